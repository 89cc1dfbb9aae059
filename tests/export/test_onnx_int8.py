"""ONNX int8: per-channel weights and per-row activations, so a row's result does not
depend on the other rows of its batch (onnxruntime's default, one activation scale per
tensor, made it depend on them)."""

from __future__ import annotations

import numpy as np
import pytest

import kerabert
from tests.export.helpers import SENTENCES, tiny_sentiment

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return tiny_sentiment()


@pytest.mark.parametrize("opset", [17, 18])
def test_onnx_int8_rows_do_not_depend_on_the_batch(model, tmp_path, opset):
    import onnx
    import onnxruntime

    from kerabert.export.client import OnnxModel, WordPieceClient

    path = kerabert.export(model, "onnx", quantize="int8", root=tmp_path, name="sst2",
                           opset=opset)
    ops = {node.op_type for node in onnx.load(str(path / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" not in ops

    session = onnxruntime.InferenceSession(str(path / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    features = WordPieceClient.from_directory(path).encode(text=SENTENCES,
                                                           pad_to_sequence_length=True)
    (batched,) = session.run(None, {k: features[k] for k in names})
    for row in range(len(SENTENCES)):
        (alone,) = session.run(None, {k: features[k][row:row + 1] for k in names})
        np.testing.assert_allclose(alone[0], batched[row], atol=1e-5)

    expected = model.predict_examples({"text": SENTENCES})
    predictions = OnnxModel(path).predict(text=SENTENCES)
    assert [p["label"] for p in predictions] == [p["label"] for p in expected]
    np.testing.assert_allclose([p["score"] for p in predictions],
                               [p["score"] for p in expected], atol=0.02)
