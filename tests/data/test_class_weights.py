"""Class weights: the balanced formula, the option's checks, the weights in the batches,
and a training run whose zero weight on the majority class makes it never predicted."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import tensorflow as tf

from kerabert.cli.options import parse_class_weight
from kerabert.data import class_weights
from kerabert.heads.classification import SentimentHead, TextClassificationHead
from kerabert.heads.tagging import TokenClassificationHead
from kerabert.validation import OptionError
from tests.training_helpers import save_tiny_checkpoint, tiny_data


def test_balanced_weights_give_every_class_the_same_total():
    values = ["a"] * 2 + ["b"] * 6 + ["c"] * 12
    weights = class_weights.balanced_weights(values, ["a", "b", "c", "d"])
    assert weights[:3] == pytest.approx([20 / (4 * 2), 20 / (4 * 6), 20 / (4 * 12)])
    totals = [w * values.count(label) for w, label in zip(weights, "abc")]
    assert totals == pytest.approx([totals[0]] * 3)
    assert weights[3] == 1.0  # a label no example has


def test_weights_by_label_value_or_name_and_the_rest_one():
    head = SentimentHead(labels=["0", "1", "2"], label_names={"0": "negative", "1": "positive"})
    assert class_weights.resolve(head, {"positive": 2.5, "2": 0}, {}) == {
        "0": 1.0, "1": 2.5, "2": 0.0}
    balanced = class_weights.resolve(head, "balanced", {"label": ["0", "1", "1", "2"]})
    assert balanced == pytest.approx({"0": 4 / 3, "1": 2 / 3, "2": 4 / 3})
    assert class_weights.resolve(head, None, {}) is None


@pytest.mark.parametrize("head,spec,message", [
    (SentimentHead(labels=["neg", "pos"]), {"neutral": 2}, r"'neutral'.*\['neg', 'pos'\]"),
    (SentimentHead(labels=["neg", "pos"]), {"pos": -1}, r"'pos' must be a number >= 0"),
    (SentimentHead(labels=["neg", "pos"]), {"pos": "heavy"}, r"'pos' must be a number"),
    (SentimentHead(labels=["neg", "pos"]), "inverse", r"'balanced' or \{label: weight\}"),
    (TextClassificationHead(labels=["a", "b"], multi_label=True), "balanced",
     r"single-label classification head"),
    (TokenClassificationHead(labels=["O", "B-PER", "I-PER"]), "balanced",
     r"single-label classification head.*'ner'"),
])
def test_bad_class_weights_are_refused_by_name(head, spec, message):
    with pytest.raises(OptionError, match=message):
        class_weights.resolve(head, spec, {"label": ["neg", "pos"]})


WEIGHTS = {"a": 0.5, "b": 2.0, "c": 4.0}  # class ids 0, 1, 2


def test_each_example_gets_its_class_weight_times_its_sample_weight():
    features = {"token_ids": tf.zeros([4, 3], tf.int32)}
    targets = tf.constant([1, 0, 2, 1])
    plain = tf.data.Dataset.from_tensors((features, targets))
    (_, got_targets, weights), = class_weights.weighted(plain, WEIGHTS)
    np.testing.assert_array_equal(got_targets, targets)
    np.testing.assert_allclose(weights, [2.0, 0.5, 4.0, 2.0])
    with_weights = tf.data.Dataset.from_tensors((features, targets, tf.constant([1., 0., 1., .5])))
    (_, _, weights), = class_weights.weighted(with_weights, WEIGHTS)
    np.testing.assert_allclose(weights, [2.0, 0.0, 4.0, 1.0])


def test_the_command_line_spelling():
    assert parse_class_weight("balanced") == "balanced"
    assert parse_class_weight("ABBR=3, DESC=1.5") == {"ABBR": 3.0, "DESC": 1.5}
    for bad in ("ABBR", "ABBR=x", "=2"):
        with pytest.raises(argparse.ArgumentTypeError, match="LABEL=WEIGHT"):
            parse_class_weight(bad)


def test_a_zero_weight_on_the_majority_class_means_it_is_never_predicted(tmp_path):
    """`pos` is most of the data; weighted 0, training only ever sees `neg` examples'
    loss, so the model calls every validation text `neg`. Unweighted, the same run
    predicts `pos` for most of them."""
    from kerabert.training import train

    data, held_out = tiny_data(48), tiny_data(24, seed=1)
    assert data["label"].count("pos") > data["label"].count("neg")
    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt", dropout=0.0)
    options = dict(backbone=checkpoint, sequence_length=32, batch_size=8, epochs=3,
                   learning_rate=1e-3, verbose=0, tensorboard=False)
    predicted = {}
    for name, spec in (("weighted", {"pos": 0.0}), ("plain", None)):
        model, report = train("sentiment", data, class_weight=spec, **options)
        labels = [p["label"] for p in model.predict_examples({"text": held_out["text"]})]
        predicted[name] = labels
        if spec:
            assert report["class_weight"] == {"neg": 1.0, "pos": 0.0}
        else:
            assert "class_weight" not in report
    assert set(predicted["weighted"]) == {"neg"}
    assert predicted["plain"].count("pos") > len(held_out["text"]) // 2
