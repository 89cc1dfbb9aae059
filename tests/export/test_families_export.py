"""Exports of a model on a SentencePiece backbone (XLM-RoBERTa): the SavedModel carries
the tokenizer, TFLite takes token ids, and the formats that cannot carry it say so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kerabert
from kerabert.export import ExportError

# Exports: minutes on 2 cores.
pytestmark = pytest.mark.slow

FAMILY = Path(__file__).parents[1] / "fixtures" / "families" / "xlm_roberta"
SENTENCES = ["a fine film", "Café owners in Zürich", "the plot was boring", "東京 , Тимур"]


def sentiment_model(folder):
    import keras

    keras.utils.set_random_seed(0)
    return kerabert.build_model("sentiment", backbone=str(folder), labels=["neg", "pos"],
                                sequence_length=32)


def keras_scores(model):
    predictions = model.predict_examples({"text": SENTENCES})
    return np.array([[p["scores"][label] for label in ("neg", "pos")] for p in predictions])


@pytest.fixture(scope="module")
def model():
    return sentiment_model(FAMILY)


@pytest.fixture(scope="module")
def expected(model):
    return keras_scores(model)


def test_savedmodel_raw_text_signature_carries_the_sentencepiece_tokenizer(
        model, expected, tmp_path):
    path = kerabert.export(model, "savedmodel", root=tmp_path, name="xlmr")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = serving(text=tf.constant(SENTENCES))
    np.testing.assert_allclose(out["scores"].numpy(), expected, atol=1e-5)


def test_tflite_token_ids_model_matches_keras(model, tmp_path):
    from kerabert.export.tflite import interpreter

    path = kerabert.export(model, "tflite", root=tmp_path, name="xlmr", text_signature=False)
    runner = interpreter(model_path=path / "model.tflite").get_signature_runner(
        "serving_default")
    features = model.head.preprocessor(model.tokenizer, model.sequence_length)(
        {"text": np.array(SENTENCES)})[0]
    inputs = {k: features[k].numpy() for k in ("token_ids", "segment_ids", "padding_mask")}
    out = runner(**inputs)
    logits = model.predict_on_batch(inputs)
    np.testing.assert_allclose(out["logits"], logits, atol=1e-4)


@pytest.mark.parametrize("format, options, message", [
    ("tflite", {}, r"format tflite cannot carry this model's SentencePieceTokenizer "
                   r"\(XLMRobertaBackbone\).*--token-ids-only"),
    ("onnx", {}, "format onnx carries WordPiece tokenizers only"),
    ("mediapipe", {}, "format mediapipe carries WordPiece tokenizers only"),
    ("huggingface", {}, "writes BERT folders; this model's backbone is XLMRobertaBackbone"),
])
def test_formats_that_cannot_carry_the_tokenizer_say_so_before_writing(
        model, tmp_path, format, options, message):
    with pytest.raises(ExportError, match=message):
        kerabert.export(model, format, root=tmp_path, name="xlmr", **options)
    assert not any(tmp_path.iterdir())


def test_a_wordpiece_family_keeps_the_raw_text_tflite_export(tmp_path):
    """DistilBERT has no segment embedding: its `segment_ids` input is unused, and the
    raw-text TFLite model still runs and matches Keras."""
    from kerabert.export.tflite import interpreter

    model = sentiment_model(FAMILY.parent / "distilbert")
    expected = keras_scores(model)
    path = kerabert.export(model, "tflite", root=tmp_path, name="distilbert")
    runner = interpreter(model_path=path / "model.tflite").get_signature_runner(
        "serving_default")
    out = runner(text=np.array(SENTENCES, dtype=object))
    np.testing.assert_allclose(out["scores"], expected, atol=1e-4)


def test_cli_token_ids_only_is_for_savedmodel_and_tflite(capsys, tmp_path):
    from kerabert.cli import main

    status = main(["export", str(tmp_path / "model.keras"), "--format", "onnx",
                   "--token-ids-only"])
    assert status == 2
    assert "--token-ids-only applies to --format savedmodel and tflite" in capsys.readouterr().err


def test_roberta_savedmodel_carries_the_byte_level_bpe_tokenizer(tmp_path):
    """keras-hub's merge loop and word cache (a mutable hash table) in the SavedModel."""
    model = sentiment_model(FAMILY.parent / "roberta")
    expected = keras_scores(model)
    path = kerabert.export(model, "savedmodel", root=tmp_path, name="roberta")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    np.testing.assert_allclose(serving(text=tf.constant(SENTENCES))["scores"].numpy(),
                               expected, atol=1e-5)
    with pytest.raises(ExportError, match=r"BytePairTokenizer \(RobertaBackbone\)"):
        kerabert.export(model, "tflite", root=tmp_path, name="roberta")
