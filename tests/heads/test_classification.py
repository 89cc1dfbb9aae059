"""Sentiment and text-classification heads on a tiny backbone: build, fit, decode, save/reload."""

from __future__ import annotations

import numpy as np
import pytest

import kerabert
from kerabert.data.tables import DataError
from kerabert.heads.classification import SentimentHead, TextClassificationHead, sort_labels

POSITIVE = ["great film", "a good movie", "brilliant and funny", "very good story",
            "fun , funny film", "the actors are great"]
NEGATIVE = ["awful film", "a bad movie", "dull and boring", "very bad story",
            "boring , dull plot", "the actors are awful"]


def _sentiment_examples(repeat=6):
    texts = (POSITIVE + NEGATIVE) * repeat
    labels = (["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)) * repeat
    return {"text": texts, "label": labels}


def _fit(model, examples, epochs=8, batch_size=12):
    ds = model.make_dataset(examples, batch_size=batch_size, training=True, seed=0)
    return model.fit(ds, epochs=epochs, verbose=0)


@pytest.mark.slow
def test_sentiment_learns_and_decodes(tiny_backbone, tiny_tokenizer, tmp_path):
    examples = _sentiment_examples()
    model = kerabert.build_model(
        "sentiment", (tiny_backbone, tiny_tokenizer), sequence_length=32, examples=examples,
        optimizer=kerabert.make_optimizer(learning_rate=3e-3, weight_decay=0.0),
    )
    assert model.head.labels == ["negative", "positive"]
    history = _fit(model, examples)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.5
    predictions = model.predict_examples({"text": ["a great , funny film", "dull , awful plot"]})
    assert [p["label"] for p in predictions] == ["positive", "negative"]
    assert set(predictions[0]["scores"]) == {"negative", "positive"}
    assert abs(sum(predictions[0]["scores"].values()) - 1) < 1e-3
    metrics = model.evaluate_examples(examples)
    assert metrics["accuracy"] == 1.0 and metrics["examples"] == len(examples["text"])

    # A reloaded model gives identical predictions and keeps labels and tokenizer.
    model.save(tmp_path / "model.keras")
    reloaded = kerabert.load_model(tmp_path / "model.keras")
    assert reloaded.head.labels == ["negative", "positive"]
    assert reloaded.tokenizer.vocabulary == tiny_tokenizer.vocabulary
    again = reloaded.predict_examples({"text": ["a great , funny film", "dull , awful plot"]})
    for a, b in zip(predictions, again):
        assert a["label"] == b["label"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)


@pytest.mark.slow
def test_pairs_use_the_second_segment(tiny_backbone, tiny_tokenizer):
    head = TextClassificationHead(labels=["same", "different"], text_pair=True)
    assert head.fields == ("text", "text_pair")
    model = kerabert.build_model(head, (tiny_backbone, tiny_tokenizer), sequence_length=32)
    examples = {"text": ["good film", "bad movie"], "text_pair": ["great film", "good story"],
                "label": ["same", "different"]}
    features, targets = next(iter(model.make_dataset(examples, batch_size=2)))
    assert features["segment_ids"].numpy().max() == 1
    assert targets.numpy().tolist() == [0, 1]
    assert len(model.predict_examples(examples)) == 2


@pytest.mark.slow
def test_multi_label_targets_thresholds_and_scores(tiny_backbone, tiny_tokenizer):
    head = TextClassificationHead(multi_label=True, threshold={"music": 0.0, "film": 1.01})
    examples = {"text": ["film and music", "book", "music"],
                "label": [["film", "music"], ["book"], ["music"]]}
    head.adapt(examples)
    assert head.labels == ["book", "film", "music"]
    model = kerabert.build_model(head, (tiny_backbone, tiny_tokenizer), sequence_length=16)
    _, targets = next(iter(model.make_dataset(examples, batch_size=3)))
    assert targets.numpy().tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 1]]
    _fit(model, examples, epochs=1, batch_size=3)
    predictions = model.predict_examples(examples)
    for p in predictions:
        assert "music" in p["labels"] and "film" not in p["labels"]  # thresholds 0 and 1.01
    score = head.score([{"labels": ["film"]}, {"labels": ["book"]}, {"labels": []}], examples)
    assert score["exact_match"] == pytest.approx(1 / 3)
    assert score["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))


def test_score_on_known_predictions():
    head = SentimentHead(labels=["neg", "pos"])
    predictions = [{"label": "pos"}, {"label": "pos"}, {"label": "neg"}, {"label": "neg"}]
    score = head.score(predictions, {"label": ["pos", "neg", "neg", "neg"]})
    assert score["accuracy"] == 0.75
    # pos: tp1 fp1 fn0 -> 2/3; neg: tp2 fp0 fn1 -> 0.8
    assert score["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_labels_sorted_numerically_and_config_round_trip():
    assert sort_labels(["10", "2", "1"]) == ["1", "2", "10"]
    head = TextClassificationHead(labels=["b", "a"], multi_label=True, dropout=0.2, threshold=0.3)
    again = TextClassificationHead.from_config(head.get_config())
    assert again.get_config() == head.get_config()
    assert SentimentHead.from_config(SentimentHead(["x"]).get_config()).labels == ["x"]


def test_reader_rejects_unknown_label_with_line(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("sentence\tlabel\ngood\tpositive\nmeh\tneutral\n")
    head = SentimentHead(labels=["negative", "positive"])
    with pytest.raises(DataError, match=r"d.tsv:3: unknown label 'neutral'"):
        head.read(path)
    assert head.read(path, skip_bad=True)["text"] == ["good"]


def test_adapt_needs_labels():
    with pytest.raises(ValueError, match="no label column"):
        SentimentHead().adapt({"text": ["x"]})
    with pytest.raises(ValueError, match="no labels yet"):
        SentimentHead().num_labels


def test_serving_outputs_in_graph():
    import tensorflow as tf

    head = SentimentHead(labels=["neg", "pos"])
    out = head.serving_outputs(tf.constant([[2.0, 0.0], [0.0, 1.0]]), {})
    assert out["label"].numpy().tolist() == [b"neg", b"pos"]
    np.testing.assert_allclose(out["scores"].numpy().sum(axis=1), [1, 1], atol=1e-6)
