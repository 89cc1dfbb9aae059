"""A task is a plain keras.Model: the user's own fit, callbacks, evaluate and saving work."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kerabert
from kerabert.task import Task

EXAMPLES = {"text": ["good film", "bad film", "great story", "awful story"] * 4,
            "label": ["pos", "neg", "pos", "neg"] * 4}


@pytest.mark.slow
def test_plain_keras_model_with_user_fit_and_callbacks(tiny_backbone, tiny_tokenizer, tmp_path):
    model = kerabert.build_model("text-classification", (tiny_backbone, tiny_tokenizer),
                                 sequence_length=16, labels=["neg", "pos"])
    assert isinstance(model, keras.Model) and isinstance(model, Task)
    assert set(model.input_names) == {"token_ids", "segment_ids", "padding_mask"}
    train = model.make_dataset(EXAMPLES, batch_size=4, training=True, seed=0)
    validation = model.make_dataset(EXAMPLES, batch_size=4)
    checkpoint = tmp_path / "best.keras"
    history = model.fit(
        train, validation_data=validation, epochs=2, verbose=0,
        callbacks=[keras.callbacks.ModelCheckpoint(checkpoint, save_best_only=True),
                   keras.callbacks.EarlyStopping(patience=5)],
    )
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    results = model.evaluate(validation, return_dict=True, verbose=0)
    # Keras' metric agrees with the decoded predictions, counted here by hand.
    predicted = [p["label"] for p in model.predict_examples(EXAMPLES)]
    expected = np.mean([p == g for p, g in zip(predicted, EXAMPLES["label"])])
    assert results["accuracy"] == pytest.approx(expected, abs=1e-6)
    best = kerabert.load_model(checkpoint)
    assert best.head.labels == ["neg", "pos"]


def test_keras_predict_matches_predict_examples(tiny_backbone, tiny_tokenizer):
    model = kerabert.build_model("sentiment", (tiny_backbone, tiny_tokenizer),
                                 sequence_length=16, labels=["neg", "pos"])
    logits = model.predict(model.make_dataset({"text": EXAMPLES["text"]}, batch_size=4,
                                              with_targets=False), verbose=0)
    decoded = model.predict_examples({"text": EXAMPLES["text"]}, batch_size=5)
    probabilities = model.head.probabilities(logits)
    np.testing.assert_allclose([d["score"] for d in decoded], probabilities.max(axis=1),
                               atol=1e-5)


def test_preprocess_function_gives_the_features_predict_examples_uses(tiny_backbone,
                                                                     tiny_tokenizer):
    import tensorflow as tf

    from kerabert.data.pipeline import bucket_boundaries

    model = kerabert.build_model("sentiment", (tiny_backbone, tiny_tokenizer),
                                 sequence_length=64, labels=["neg", "pos"])
    texts = ["a good film", "a dull and boring and awful movie with a plot"]
    features = tf.function(model.preprocess_function())({"text": tf.constant(texts)})
    length = features["token_ids"].shape[1]
    assert length in bucket_boundaries(64) and length < 64  # cut to the bucket, not 64
    assert int(tf.reduce_max(tf.reduce_sum(features["padding_mask"], axis=1))) <= length
    logits = model.predict_on_batch({k: features[k] for k in model.input_names})
    decoded = model.predict_examples({"text": texts})
    np.testing.assert_allclose([d["score"] for d in decoded],
                               model.head.probabilities(logits).max(axis=1), atol=1e-5)


def test_predict_needs_the_heads_fields(tiny_backbone, tiny_tokenizer):
    model = kerabert.build_model("sentiment", (tiny_backbone, tiny_tokenizer), labels=["a", "b"])
    with pytest.raises(ValueError, match="needs field"):
        model.predict_examples({"sentence": ["x"]})


def test_head_instance_with_options_is_an_error(tiny_backbone, tiny_tokenizer):
    from kerabert.heads.classification import SentimentHead

    with pytest.raises(ValueError, match="head options"):
        kerabert.build_model(SentimentHead(["a"]), (tiny_backbone, tiny_tokenizer), dropout=0.3)
