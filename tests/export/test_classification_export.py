"""Every format on a tiny sentiment model, checked against the Keras model.

Conversions are slow, so the module exports each format once and the tests share them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerabert
from tests.export.helpers import SENTENCES, tiny_sentiment

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return tiny_sentiment()


@pytest.fixture(scope="module")
def expected(model):
    predictions = model.predict_examples({"text": SENTENCES})
    scores = np.array([[p["scores"][l] for l in ("negative", "positive")] for p in predictions])
    return [p["label"] for p in predictions], np.array([p["score"] for p in predictions]), scores


@pytest.fixture(scope="module")
def exports(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("savedmodels")
    written = {}
    for key, format, options in [
        ("savedmodel", "savedmodel", {}),
        ("ids_only", "savedmodel", {"text_signature": False}),
        ("tflite", "tflite", {}),
        ("tflite_int8", "tflite", {"quantize": "int8"}),
        ("onnx", "onnx", {}),
    ]:
        written[key] = kerabert.export(model, format, root=root, name="sst2", **options)
    return written


def test_versions_follow_tf_serving_layout(exports):
    # TF Serving's model folder holds SavedModel versions only: it serves the highest
    # version, which must have a saved_model.pb. Other formats have their own folders.
    layout = {k: exports[k].relative_to(exports[k].parents[1]).as_posix() for k in exports}
    assert layout == {"savedmodel": "sst2/1", "ids_only": "sst2/2", "tflite": "sst2-tflite/1",
                      "tflite_int8": "sst2-tflite/2", "onnx": "sst2-onnx/1"}
    root = exports["savedmodel"].parents[1]
    assert all((version / "saved_model.pb").is_file() for version in (root / "sst2").iterdir())
    assert (exports["savedmodel"] / "saved_model.pb").is_file()
    # Readable by a server running as another user: the umask's mode, not mkdtemp's 0700.
    umask = os.umask(0o022)
    os.umask(umask)
    for path in exports.values():
        assert path.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (exports["savedmodel"] / "README.md").read_text().startswith("# sentiment model")


def test_savedmodel_stores_each_weight_once(exports, model):
    # Keras' ExportArchive saved every weight twice (the Keras variable and the
    # tf.Variable the endpoints capture, `variables/` and `_all_variables/`).
    weights = sum(w.nbytes for w in model.get_weights())
    for key in ("savedmodel", "ids_only"):
        data = sum(p.stat().st_size
                   for p in (exports[key] / "variables").glob("variables.data-*"))
        assert weights <= data < 1.2 * weights, (key, data, weights)


SESSION_LOADER = textwrap.dedent("""
    import json, sys
    if sys.argv[2] == "with-text-ops":
        import tensorflow_text  # noqa: F401  (registers FastBertNormalize & co.)
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
        signature = meta.signature_def["serving_default"]
        feed = {signature.inputs[k].name: v for k, v in json.loads(sys.argv[3]).items()}
        fetch = {k: v.name for k, v in signature.outputs.items()}
        out = session.run(fetch, feed)
    print(json.dumps({k: (v.astype(str) if v.dtype == object else v).tolist()
                      for k, v in out.items()}))
""")


def _session_run(path, text_ops, inputs):
    # The TF1 session-based loader, as TF Serving loads a SavedModel, in a fresh process.
    result = subprocess.run(
        [sys.executable, "-c", SESSION_LOADER, str(path),
         "with-text-ops" if text_ops else "plain", json.dumps(inputs)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_savedmodel_raw_text_under_the_session_loader(exports, expected):
    labels, best, scores = expected
    out = _session_run(exports["savedmodel"], True, {"text": SENTENCES})
    assert out["label"] == labels
    np.testing.assert_allclose(out["score"], best, atol=1e-5)
    np.testing.assert_allclose(out["scores"], scores, atol=1e-5)


def test_savedmodel_token_ids_signature_needs_no_text_ops(exports, model):
    features = model.head.preprocessor(model.tokenizer, model.sequence_length)(
        {"text": np.array(SENTENCES)})[0]
    inputs = {k: features[k].numpy().tolist() for k in ("token_ids", "segment_ids",
                                                       "padding_mask")}
    out = _session_run(exports["ids_only"], False, inputs)
    logits = model.predict_on_batch({k: np.array(v, np.int32) for k, v in inputs.items()})
    np.testing.assert_allclose(out["logits"], logits, atol=1e-5)


def _run_tflite(path, texts):
    from kerabert.export.tflite import interpreter

    runner = interpreter(model_path=path / "model.tflite").get_signature_runner("serving_default")
    return runner(text=np.array(texts, dtype=object))


def test_tflite_float_matches_keras(exports, expected):
    labels, best, scores = expected
    out = _run_tflite(exports["tflite"], SENTENCES)
    assert [label.decode() for label in out["label"]] == labels
    np.testing.assert_allclose(out["scores"], scores, atol=1e-4)
    np.testing.assert_allclose(out["score"], best, atol=1e-4)


def test_tflite_int8_is_smaller_and_close(exports, expected):
    _, _, scores = expected
    out = _run_tflite(exports["tflite_int8"], SENTENCES)
    # Dynamic-range int8 weights: scores within 0.02 on this tiny random model.
    np.testing.assert_allclose(out["scores"], scores, atol=0.02)
    float_size = (exports["tflite"] / "model.tflite").stat().st_size
    int8_size = (exports["tflite_int8"] / "model.tflite").stat().st_size
    assert int8_size < float_size
    card = json.loads((exports["tflite_int8"] / "card.json").read_text())
    assert card["quantize"] == "int8" and card["files"]["model.tflite"] == int8_size


def test_onnx_with_python_client_matches_keras(exports, expected):
    from kerabert.export.client import OnnxModel

    labels, best, scores = expected
    onnx_model = OnnxModel(exports["onnx"])
    predictions = onnx_model.predict(text=SENTENCES)
    assert [p["label"] for p in predictions] == labels
    np.testing.assert_allclose([p["score"] for p in predictions], best, atol=1e-4)
    card = json.loads((exports["onnx"] / "card.json").read_text())
    assert card["signatures"]["onnx"][0]["token_ids"] == ["tensor(int32)", ["batch", "sequence"]]
    assert card["opset"] >= 17


def test_cli_export_writes_next_version(tmp_path, model):
    from kerabert.cli import main

    model.save(tmp_path / "model.keras")
    (tmp_path / "metrics.json").write_text(json.dumps({"validation": {"accuracy": 0.5}}))
    assert main(["export", str(tmp_path), "--format", "onnx", "--root",
                 str(tmp_path / "out"), "--name", "tiny"]) == 0
    card = json.loads((tmp_path / "out" / "tiny-onnx" / "1" / "card.json").read_text())
    assert card["training"] == {"validation": {"accuracy": 0.5}}
    assert main(["export", str(tmp_path), "--format", "onnx", "--output",
                 str(tmp_path / "out" / "tiny-onnx" / "1")]) == 2
