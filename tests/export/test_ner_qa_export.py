"""NER and QA exports on tiny models: in-graph decoding matches `predict_examples`."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import kerabert
from tests.export.helpers import tiny_task

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow

NER_TEXTS = ["john smith is in paris", "the film"]
# Capitals reach the model only through the case feature (the tokenizer lower-cases).
NER_CASED = ["John SMITH is in Paris .", "McDonald of IBM went to Zürich in 1996", "the film"]
QA_INPUTS = {"question": ["who is in paris ?", "what film ?", "où ?"],
             "context": ["john smith is in paris . the film was good", "the film was good",
                         "café à paris é"]}


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    from kerabert.heads.tagging import TokenClassificationHead

    model = tiny_task(TokenClassificationHead(labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))
    root = tmp_path_factory.mktemp("ner")
    return model, {f: kerabert.export(model, f, root=root, name="ner")
                   for f in ("savedmodel", "tflite", "onnx")}


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    from kerabert.heads.span import QuestionAnsweringHead

    model = tiny_task(QuestionAnsweringHead(allow_no_answer=False))
    root = tmp_path_factory.mktemp("qa")
    return model, {f: kerabert.export(model, f, root=root, name="qa")
                   for f in ("savedmodel", "tflite", "onnx")}


def _check_ner(model, out, texts=NER_TEXTS):
    expected = model.predict_examples({"text": texts})
    for row, prediction in enumerate(expected):
        n = len(prediction["tags"])
        assert [t.decode() for t in out["tags"][row][:n]] == prediction["tags"]
        starts = [e["start"] for e in prediction["entities"]]
        assert list(out["entity_starts"][row][: len(starts)]) == starts
        ends = [e["end"] for e in prediction["entities"]]
        assert list(out["entity_ends"][row][: len(ends)]) == ends
        assert int(out["num_entities"][row]) == len(starts)


def test_ner_savedmodel_and_tflite_decode_like_keras(ner):
    from kerabert.export.tflite import interpreter

    model, paths = ner
    assert model.head.case_feature and model.head.decoding == "viterbi"  # the defaults
    loaded = tf.saved_model.load(str(paths["savedmodel"]))
    runner = interpreter(model_path=paths["tflite"] / "model.tflite").get_signature_runner(
        "serving_default")
    for texts in (NER_TEXTS, NER_CASED):
        out = loaded.signatures["serving_default"](text=tf.constant(texts))
        _check_ner(model, {k: v.numpy() for k, v in out.items()}, texts)
        _check_ner(model, runner(text=np.array(texts, dtype=object)), texts)
    # The token-ids signature takes the case ids as well.
    ids_signature = loaded.signatures["serve_token_ids"]
    assert "case_ids" in ids_signature.structured_input_signature[1]
    features = _features(model, {"text": NER_CASED})
    np.testing.assert_allclose(ids_signature(**{k: tf.constant(v) for k, v in features.items()})[
        "logits"].numpy(), model.predict_on_batch(features), atol=1e-4)


def test_ner_case_feature_changes_the_exported_outputs(ner):
    model, paths = ner
    loaded = tf.saved_model.load(str(paths["savedmodel"]))
    serve = loaded.signatures["serving_default"]
    lower = serve(text=tf.constant(["john smith is in paris"]))["tag_scores"].numpy()
    upper = serve(text=tf.constant(["John SMITH is in Paris"]))["tag_scores"].numpy()
    assert not np.allclose(lower, upper)


def _features(model, columns):
    features = model.head.preprocessor(model.tokenizer, model.sequence_length)(
        {k: tf.constant(v) for k, v in columns.items()})[0]
    return {k: features[k].numpy() for k in model.input.keys()}


def test_ner_onnx_matches_keras(ner):
    import onnxruntime

    model, paths = ner
    features = _features(model, {"text": NER_TEXTS})
    session = onnxruntime.InferenceSession(str(paths["onnx"] / "model.onnx"))
    assert {i.name for i in session.get_inputs()} == set(model.input_names)
    (logits,) = session.run(None, features)
    np.testing.assert_allclose(logits, model.predict_on_batch(features), atol=1e-4)


@pytest.mark.parametrize("texts", [NER_CASED, [t.split() for t in NER_CASED]])
def test_ner_onnx_client_feeds_case_ids_and_decodes_like_keras(ner, texts):
    from kerabert.export.client import OnnxModel

    model, paths = ner
    client = OnnxModel(paths["onnx"])
    encoded = client.client.encode(text=texts)
    pre = model.head.preprocessor(model.tokenizer, model.sequence_length)
    column = tf.ragged.constant(texts) if isinstance(texts[0], list) else tf.constant(texts)
    features = {k: v.numpy() for k, v in pre({"text": column})[0].items()}
    width = encoded["token_ids"].shape[1]
    for name in ("token_ids", "padding_mask", "case_ids"):
        np.testing.assert_array_equal(encoded[name], features[name][:, :width])
    assert encoded["case_ids"].max() > 1  # capitals seen
    logits = client.run(text=texts)["logits"]
    padded = np.zeros(features["token_ids"].shape + logits.shape[-1:], np.float32)
    padded[:, :width] = logits
    assert model.head.decode(padded, features, {"text": texts}) == \
        model.predict_examples({"text": texts})


def test_qa_savedmodel_answers_like_keras(qa):
    model, paths = qa
    expected = model.predict_examples(QA_INPUTS)
    loaded = tf.saved_model.load(str(paths["savedmodel"]))
    out = loaded.signatures["serving_default"](
        **{k: tf.constant(v) for k, v in QA_INPUTS.items()})
    assert [a.decode() for a in out["answer"].numpy()] == [e["answer"] for e in expected]
    assert out["start"].numpy().tolist() == [e["start"] for e in expected]
    np.testing.assert_allclose(out["score"].numpy(), [e["score"] for e in expected], atol=1e-4)


def test_qa_onnx_matches_keras(qa):
    import onnxruntime

    model, paths = qa
    features = _features(model, QA_INPUTS)
    session = onnxruntime.InferenceSession(str(paths["onnx"] / "model.onnx"))
    (logits,) = session.run(None, features)
    np.testing.assert_allclose(logits, model.predict_on_batch(features), atol=1e-4)


def test_qa_tflite_answers_like_keras(qa):
    from kerabert.export.tflite import interpreter

    model, paths = qa
    expected = model.predict_examples(QA_INPUTS)
    runner = interpreter(model_path=paths["tflite"] / "model.tflite").get_signature_runner(
        "serving_default")
    out = runner(**{k: np.array(v, dtype=object) for k, v in QA_INPUTS.items()})
    assert [a.decode() for a in out["answer"]] == [e["answer"] for e in expected]
    assert out["start"].tolist() == [e["start"] for e in expected]
    assert out["end"].tolist() == [e["end"] for e in expected]
    np.testing.assert_allclose(out["score"], [e["score"] for e in expected], atol=1e-4)
