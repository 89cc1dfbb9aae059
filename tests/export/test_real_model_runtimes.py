"""The deployment runtimes on a real-size model: all-MiniLM-L6-v2's pretrained weights
(6 layers, hidden 384, the real vocabulary) with a sentiment head, exported once per
format and run by the runtime a user deploys to, on real SST-2 dev sentences: MediaPipe's
`TextClassifier`, TF Serving's session-based loader replaying the warmup file, and
onnxruntime with the extensions library taking raw strings. The tiny-model tests beside
this one cover each format's options; this one checks that nothing breaks at real size.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import kerabert
from tests.conftest import SHARED_DATA, requires_pretrained, requires_shared_data
from tests.export.test_mediapipe import _classifier, _scores
from tests.export.test_tf_serving import _replay, _requests

pytestmark = [pytest.mark.slow, requires_pretrained, requires_shared_data]
LABELS = ["negative", "positive"]
LENGTH = 64


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    backbone = kerabert.load_backbone("all-minilm-l6-v2")
    return kerabert.build_model("sentiment", backbone, labels=LABELS, sequence_length=LENGTH,
                                compile=False)


@pytest.fixture(scope="module")
def texts():
    with open(SHARED_DATA / "sst2" / "dev.tsv", encoding="utf-8") as f:
        column = f.readline().rstrip("\n").split("\t").index("sentence")
        rows = [line.rstrip("\n").split("\t")[column] for line in f]
    return [t for t in rows if t.isascii()][:24]  # MediaPipe's tokenizer: ASCII only


@pytest.fixture(scope="module")
def expected(model, texts):
    predictions = model.predict_examples({"text": texts})
    scores = np.array([[p["scores"][label] for label in LABELS] for p in predictions])
    assert scores[:, 1].std() > 1e-3  # the scores depend on the text: a real comparison
    return [p["label"] for p in predictions], scores


def test_mediapipe_text_classifier_on_the_real_model(model, texts, expected, tmp_path):
    pytest.importorskip("mediapipe")
    path = kerabert.export(model, "mediapipe", root=tmp_path, name="sst2")
    names, scores = _scores(_classifier(path / "model.tflite"), texts, len(LABELS))
    assert names == expected[0]
    np.testing.assert_allclose(scores, expected[1], atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_serving") is None,
                    reason="tensorflow-serving-api not installed: pip install -e '.[deploy]'")
def test_tf_serving_warmup_replays_on_the_real_model(model, texts, expected, tmp_path):
    import tensorflow as tf

    version = kerabert.export(model, "savedmodel", root=tmp_path, name="sst2",
                              warmup_data={"text": texts})
    replies, requests = _replay(version), _requests(version)
    assert len(replies) == len(requests) > 0
    labels, scores = dict(zip(texts, expected[0])), dict(zip(texts, expected[1]))
    for request, reply in zip(requests, replies):
        sent = [t.decode() for t in tf.make_ndarray(request.inputs["text"])]
        assert reply["label"] == [labels[t] for t in sent]
        np.testing.assert_allclose(reply["scores"], [scores[t] for t in sent], atol=1e-5)


def test_onnx_with_the_tokenizer_on_the_real_model(model, texts, expected, tmp_path):
    pytest.importorskip("onnxruntime_extensions")
    from kerabert.export.onnx_text import session

    path = kerabert.export(model, "onnx", onnx_tokenizer=True, root=tmp_path, name="sst2")
    loaded = session(path / "model_text.onnx")
    for text, label, scores in zip(texts, *expected):
        got_label, _, got_scores = loaded.run(None, {"text": np.array([text], dtype=object)})
        assert got_label.tolist() == [label]
        np.testing.assert_allclose(got_scores[0], scores, atol=1e-4)
