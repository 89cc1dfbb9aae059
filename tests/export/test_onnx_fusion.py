"""`kerabert.export.onnx_fusion`: the ONNX export's layer norms, GELUs and attention
projections come out in the forms onnxruntime fuses and quantizes, with the same
outputs as the graph tf2onnx wrote."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from kerabert.export import onnx as onnx_export
from kerabert.export import onnx_fusion
from tests.export.helpers import SENTENCES, tiny_sentiment

# Exports: tens of seconds each on 2 cores.
pytestmark = pytest.mark.slow

LAYERS = 2  # the tiny backbone's transformer layers


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny model converted without and with the rewrites."""
    folder = tmp_path_factory.mktemp("onnx")
    model = tiny_sentiment()
    onnx_export.convert(model, folder / "plain.onnx", fuse=False)
    onnx_export.convert(model, folder / "fused.onnx")
    return model, folder


def _ops(path):
    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _run(path, features, **options):
    import onnxruntime

    session_options = onnxruntime.SessionOptions()
    for key, value in options.items():
        setattr(session_options, key, value)
    session = onnxruntime.InferenceSession(str(path), session_options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: features[i.name] for i in session.get_inputs()})[0]


def _features(model):
    from kerabert.export.client import WordPieceClient

    settings = onnx_export.tokenizer_settings(model)
    settings.pop("vocabulary")
    client = WordPieceClient(list(model.tokenizer.vocabulary), **settings)
    return client.encode(text=SENTENCES)


def test_every_layer_norm_gelu_and_projection_is_rewritten(exported):
    _, folder = exported
    plain, fused = _ops(folder / "plain.onnx"), _ops(folder / "fused.onnx")
    # One layer norm after the embeddings and two per transformer layer.
    assert plain["LayerNormalization"] == 0 and fused["LayerNormalization"] == 2 * LAYERS + 1
    assert fused["GlobalAveragePool"] == 0 and fused["Reciprocal"] == 0
    assert plain["Gemm"] > fused["Gemm"]
    assert fused["Erf"] == plain["Erf"] == LAYERS
    assert sum(fused.values()) < sum(plain.values())


def test_fused_graph_gives_the_same_outputs_and_onnxruntime_fuses_it(exported, tmp_path):
    import onnx

    model, folder = exported
    features = _features(model)
    plain = _run(folder / "plain.onnx", features)
    fused = _run(folder / "fused.onnx", features,
                 optimized_model_filepath=str(tmp_path / "optimized.onnx"))
    np.testing.assert_allclose(fused, plain, atol=1e-5)
    keras_logits = model.predict({k: features[k] for k in model.input}, verbose=0)
    np.testing.assert_allclose(fused, keras_logits, atol=1e-5)
    optimized = {n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}
    assert {"Gelu", "LayerNormalization"} <= optimized, optimized


def test_int8_quantizes_the_former_gemms(exported, tmp_path):
    model, folder = exported
    onnx_export.quantize_dynamic(folder / "fused.onnx", tmp_path / "int8.onnx")
    ops = _ops(tmp_path / "int8.onnx")
    weight_matmuls = _ops(folder / "fused.onnx")["Gemm"]
    # Only Gemms with a bias are left in float (the pooler and the classifier).
    assert ops["Gemm"] == weight_matmuls <= 2
    features = _features(model)
    np.testing.assert_allclose(_run(tmp_path / "int8.onnx", features),
                               _run(folder / "plain.onnx", features), atol=0.05)


def test_unrecognised_graphs_are_left_alone():
    import onnx
    from onnx import TensorProto, helper

    # A mean over the last axis that is not a layer norm, and an Erf that is not a GELU.
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["m"]),
         helper.make_node("Sub", ["x", "m"], ["d"]),
         helper.make_node("Erf", ["d"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    before = proto.SerializeToString()
    assert onnx_fusion.fuse(proto) == {"layer_norms": 0, "gelus": 0, "gemms": 0}
    assert proto.SerializeToString() == before
    onnx.checker.check_model(proto)


def test_the_rewrite_can_be_turned_off_and_only_for_onnx(exported, tmp_path, capsys):
    import kerabert
    from kerabert.cli import main
    from kerabert.export import ExportError

    model, _ = exported
    with pytest.raises(ExportError, match="onnx_fusion applies to format onnx"):
        kerabert.export(model, "tflite", root=tmp_path, name="m", onnx_fusion=False)
    path = kerabert.export(model, "onnx", root=tmp_path, name="m", onnx_fusion=False)
    assert _ops(path / "model.onnx")["LayerNormalization"] == 0
    assert main(["export", str(tmp_path / "nosuch"), "--format", "tflite",
                 "--no-onnx-fusion"]) == 2
    assert "--no-onnx-fusion applies to --format onnx" in capsys.readouterr().err
