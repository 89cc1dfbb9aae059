"""`--format mediapipe`: MediaPipe's own TextClassifier loads and runs the export."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import kerabert
from tests.conftest import SHARED_DATA, TINY_VOCABULARY, requires_pretrained, requires_shared_data
from tests.export.helpers import SENTENCES, tiny_sentiment

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None,
    reason="mediapipe not installed: pip install -e '.[deploy]'",
)]
# ASCII texts: MediaPipe's tokenizer only lower-cases ASCII (see kerabert/export/mediapipe.py).
TEXTS = [s for s in SENTENCES if s.isascii()] + [
    "A GOOD film, but the plot was dull!", "it is not very fun", "boring boring boring",
    "john smith 's (great) music", "a good film " * 20]


def _classifier(path):
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    return text.TextClassifier.create_from_options(text.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(path))))


def _scores(classifier, texts, num_labels):
    """`(top label names, [n, num_labels] scores)` from MediaPipe's classifier."""
    names, scores = [], np.zeros((len(texts), num_labels))
    for row, text in enumerate(texts):
        categories = classifier.classify(text).classifications[0].categories
        names.append(categories[0].category_name)
        for category in categories:
            scores[row, category.index] = category.score
    return names, scores


@pytest.fixture(scope="module")
def model():
    import keras

    model = tiny_sentiment()
    # A random tiny model gives about the same scores for every text; a few steps of
    # training on alternating labels make them depend on the tokens, so that a
    # tokenization difference would show in the comparison with Keras.
    texts = TEXTS + ["a great fun movie", "an awful boring story", "not good", "very bad"]
    features = model.head.preprocessor(model.tokenizer, model.sequence_length)(
        {"text": np.array(texts)})[0]
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=model.head.loss())
    model.fit({k: features[k] for k in model.input}, np.arange(len(texts)) % 2,
              epochs=12, batch_size=len(texts), verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    from kerabert.cli import main

    folder = tmp_path_factory.mktemp("run")
    model.save(folder / "model.keras")
    root = folder / "savedmodels"
    assert main(["export", str(folder), "--format", "mediapipe", "--root", str(root),
                 "--name", "sst2"]) == 0
    int8 = kerabert.export(model, "mediapipe", quantize="int8", root=root, name="sst2")
    full = kerabert.export(model, "mediapipe", quantize="int8-full", root=root, name="sst2",
                           calibration_data={"text": TEXTS * 3})
    return root / "sst2-mediapipe" / "1", int8, full  # not in the TF Serving folder


def test_mediapipe_text_classifier_matches_keras(model, exported):
    predictions = model.predict_examples({"text": TEXTS})
    expected = np.array([[p["scores"][label] for label in model.head.labels]
                         for p in predictions])
    assert np.ptp(expected[:, 0]) > 0.05  # the check below can see token differences
    names, scores = _scores(_classifier(exported[0] / "model.tflite"), TEXTS, 2)
    assert names == [p["label"] for p in predictions]
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_mediapipe_int8_is_smaller_and_close(model, exported):
    predictions = model.predict_examples({"text": TEXTS})
    expected = np.array([[p["scores"][label] for label in model.head.labels]
                         for p in predictions])
    _, scores = _scores(_classifier(exported[1] / "model.tflite"), TEXTS, 2)
    np.testing.assert_allclose(scores, expected, atol=0.05)
    assert (exported[1] / "model.tflite").stat().st_size < (
        exported[0] / "model.tflite").stat().st_size


def test_mediapipe_calibrated_full_integer(model, exported):
    from ai_edge_litert.interpreter import Interpreter

    predictions = model.predict_examples({"text": TEXTS})
    expected = np.array([[p["scores"][label] for label in model.head.labels]
                         for p in predictions])
    _, scores = _scores(_classifier(exported[2] / "model.tflite"), TEXTS, 2)
    np.testing.assert_allclose(scores, expected, atol=0.05)
    # Activations are int8: the graph holds quantize ops and int8 tensors, not only weights.
    def per_tensor_int8(path):
        tensors = Interpreter(model_path=str(path / "model.tflite")).get_tensor_details()
        return sum(t["dtype"] == np.int8 and t["quantization_parameters"]["scales"].size == 1
                   for t in tensors)

    assert per_tensor_int8(exported[2]) > per_tensor_int8(exported[1]) + 20
    card = json.loads((exported[2] / "card.json").read_text())
    assert card["quantize"] == "int8-full" and "calibrated on 24 training texts" in (
        card["quantization"])


def test_full_integer_needs_calibration_data(model, tmp_path):
    from kerabert.export import ExportError

    with pytest.raises(ExportError, match="calibration"):
        kerabert.export(model, "mediapipe", quantize="int8-full", root=tmp_path)
    with pytest.raises(ExportError, match="mediapipe"):
        kerabert.export(model, "tflite", quantize="int8-full", root=tmp_path)


def test_card_and_metadata(exported):
    import zipfile

    card = json.loads((exported[0] / "card.json").read_text())
    inputs, outputs = card["signatures"]["mediapipe"]
    assert sorted(inputs) == sorted(f"serving_default_{n}:0" for n in
                                    ("input_word_ids", "input_mask", "input_type_ids"))
    assert all(value == ["int32", [1, 32]] for value in inputs.values())
    assert list(outputs.values()) == [["float32", [1, 2]]]
    # The metadata packs the vocabulary and labels as a zip appended to the flatbuffer.
    with zipfile.ZipFile(exported[0] / "model.tflite") as packed:
        assert packed.read("labels.txt").decode().split() == ["negative", "positive"]
        assert packed.read("vocab.txt").decode().split("\n")[:-1] == TINY_VOCABULARY


def test_minimum_parser_version_of_bert_metadata(exported):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.metadata import schema_py_generated as schema

    from kerabert.export.mediapipe import minimum_parser_version

    content = (exported[0] / "model.tflite").read_bytes()
    tflite = schema.Model.GetRootAsModel(content, 0)
    buffers = [tflite.Metadata(i) for i in range(tflite.MetadataLength())]
    found = [m for m in buffers if m.Name() == b"TFLITE_METADATA"]
    assert len(found) == 1
    data = tflite.Buffers(found[0].Buffer()).DataAsNumpy().tobytes()
    stored = fb.ModelMetadata.GetRootAsModelMetadata(data, 0)
    # BERT tokenizer in the subgraph's input process units: parser 1.1.0, as Model Maker's
    # BERT classifiers carry.
    assert stored.MinParserVersion() == b"1.1.0"
    assert minimum_parser_version(data) == "1.1.0"


def test_other_heads_are_refused(tmp_path):
    from kerabert.export import ExportError
    from kerabert.heads.classification import TextClassificationHead
    from kerabert.heads.tagging import TokenClassificationHead
    from tests.export.helpers import tiny_task

    for head, message in [
        (TokenClassificationHead(labels=["O", "B-PER"]), "classification heads"),
        (TextClassificationHead(labels=["a", "b"], multi_label=True), "single-label"),
        (TextClassificationHead(labels=["a", "b"], text_pair=True), "one text"),
    ]:
        with pytest.raises(ExportError, match=message):
            kerabert.export(tiny_task(head), "mediapipe", root=tmp_path)
    assert not any(tmp_path.rglob("*.tflite"))


def _probe(vocabulary, length, path):
    """A MediaPipe model whose 'scores' are its input token ids: shows MediaPipe's tokens."""
    import tempfile

    import tensorflow as tf

    from kerabert.export.mediapipe import INPUT_NAMES, add_metadata

    class Probe(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, length], tf.int32, name=n)
                                      for n in INPUT_NAMES])
        def serve(self, token_ids, padding_mask, segment_ids):
            return {"ids": tf.cast(token_ids, tf.float32)}

    probe = Probe()
    with tempfile.TemporaryDirectory() as directory:
        tf.saved_model.save(probe, directory, signatures={"serving_default": probe.serve})
        content = tf.lite.TFLiteConverter.from_saved_model(directory).convert()
    path.write_bytes(add_metadata(content, vocabulary, [str(i) for i in range(length)]))
    classifier = _classifier(path)

    def tokens(text):
        ids = np.zeros(length, np.int64)
        for category in classifier.classify(text).classifications[0].categories:
            ids[category.index] = round(category.score)
        return ids

    return tokens


def _kerabert_ids(tokenizer, texts, length):
    import tensorflow as tf

    packed = tokenizer.pack([tokenizer(tf.constant(texts))], length)
    return np.asarray(packed["token_ids"])


def test_mediapipe_tokenizer_is_kerabert_on_ascii_text(tmp_path, model):
    tokens = _probe(TINY_VOCABULARY, 32, tmp_path / "probe.tflite")
    texts = TEXTS + ["Don't (STOP) - it's good?", "tabs\tand\nnew lines"]
    expected = _kerabert_ids(model.tokenizer, texts, 32)
    for text, ids in zip(texts, expected):
        np.testing.assert_array_equal(tokens(text), ids, err_msg=text)


@requires_shared_data
@requires_pretrained
def test_mediapipe_tokenizer_on_sst2_dev(tmp_path):
    """Real vocabulary, real sentences: ASCII ones tokenize identically; the documented
    difference (no accent stripping) shows on the others."""
    tokenizer = kerabert.load_backbone("all-minilm-l6-v2", load_weights=False)[1]
    length = 128
    tokens = _probe(tokenizer.vocabulary, length, tmp_path / "probe.tflite")
    with open(SHARED_DATA / "sst2" / "dev.tsv", encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        column = header.index("sentence")
        texts = [line.rstrip("\n").split("\t")[column] for line in f]
    expected = _kerabert_ids(tokenizer, texts, length)
    ascii_rows = [i for i, text in enumerate(texts) if text.isascii()]
    assert len(ascii_rows) > 0.95 * len(texts)
    for i in ascii_rows:
        np.testing.assert_array_equal(tokens(texts[i]), expected[i], err_msg=texts[i])
    # Accents: MediaPipe gives [UNK] where kerabert strips them (the documented difference).
    assert tokens("café")[1] == tokenizer.unknown_id
    assert _kerabert_ids(tokenizer, ["café"], 8)[0, 1] != tokenizer.unknown_id
