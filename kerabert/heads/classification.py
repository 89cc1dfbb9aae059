"""Sequence classification heads: sentiment and text classification.

Single texts or text pairs, multi-class (softmax) or multi-label (sigmoid with a
threshold per label), on BERT's pooled `[CLS]` output, as keras-hub's
`BertTextClassifier` does.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kerabert.data.tables import DataError, check_targets, read_table
from kerabert.heads.base import Head
from kerabert.heads.layers import dropout_logits

TEXT_COLUMNS = ("text", "sentence", "sentence1", "question", "review", "content")
PAIR_COLUMNS = ("text_pair", "sentence2", "question2", "hypothesis")
LABEL_COLUMNS = ("label", "labels", "category", "class", "sentiment", "target")


def sort_labels(labels):
    """Label names in a stable order: numerically when they are all integers."""
    labels = set(labels)
    if all(_is_int(label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


class ClassificationPreprocessor(keras.layers.Layer):
    """Raw `text` (and `text_pair`, `label`) batches -> BERT inputs and targets.

    Args:
        tokenizer: a `kerabert.tokenizer.BertTokenizer`.
        sequence_length: the packed length.
        labels: label names (index = class id); needed only for batches with labels.
        multi_label: labels are lists, encoded as multi-hot vectors.
        text_pair: read a second segment from `text_pair`.
    """

    def __init__(self, tokenizer, sequence_length, labels=None, multi_label=False,
                 text_pair=False, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.labels = list(labels) if labels else None
        self.multi_label = multi_label
        self.text_pair = text_pair
        if self.labels:
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.labels), tf.range(len(self.labels), dtype=tf.int32)
                ),
                default_value=-1,
            )

    def call(self, batch):
        segments = [self.tokenizer(batch["text"])]
        if self.text_pair:
            segments.append(self.tokenizer(batch["text_pair"]))
        features = self.tokenizer.pack(segments, self.sequence_length)
        if "label" not in batch:
            return features, None, None
        if not self.labels:
            raise ValueError("the head has no labels: call head.adapt(examples) first")
        ids = self._table.lookup(batch["label"])
        check = tf.debugging.assert_non_negative(
            ids if not isinstance(ids, tf.RaggedTensor) else ids.flat_values,
            message=f"a label outside the head's labels {self.labels}",
        )
        with tf.control_dependencies([check]):
            if self.multi_label:
                hot = tf.ragged.map_flat_values(tf.one_hot, ids, len(self.labels))
                targets = tf.minimum(tf.reduce_sum(hot, axis=1), 1.0)
            else:
                targets = tf.identity(ids)
        return features, targets, None


class TextClassificationHead(Head):
    """Text classification: single texts or pairs, multi-class or multi-label.

    Data fields: `text`, optionally `text_pair`; targets in `label` (a name, or a list
    of names when `multi_label`).

    Args:
        labels: label names; learned from the training data (`adapt`) when omitted.
        multi_label: each text may have several labels (sigmoid outputs).
        text_pair: classify pairs of texts (`text`, `text_pair`).
        dropout: dropout rate before the output layer.
        threshold: multi-label decision threshold, one float or `{label: float}`.
        label_names: `{label: name}`: what predictions, reports and exports call a
            label value of the data (e.g. `{"0": "negative", "1": "positive"}`);
            unnamed labels keep their value. Targets in data files stay the values.

    Example:
    ```python
    head = TextClassificationHead(labels=["World", "Sports", "Business", "Sci/Tech"])
    model = kerabert.build_model(head, backbone="all-minilm-l6-v2")
    ```
    """

    name = "text-classification"
    recipe = {"epochs": 2, "learning_rate": 1e-4, "warmup_ratio": 0.1,
              "sequence_length": 128}

    def __init__(self, labels=None, multi_label=False, text_pair=False, dropout=0.1,
                 threshold=0.5, label_names=None):
        self.labels = [str(label) for label in labels] if labels else None
        self.multi_label = bool(multi_label)
        self.text_pair = bool(text_pair)
        self.dropout = float(dropout)
        self.threshold = threshold
        self.label_names = (
            {str(k): str(v) for k, v in label_names.items()} if label_names else None
        )
        if self.labels:
            self._check_label_names()

    def _check_label_names(self):
        if not self.label_names:
            return
        unknown = sorted(set(self.label_names) - set(self.labels))
        if unknown:
            raise DataError(f"label_names: {unknown[0]!r} is not a label of the data; "
                             f"labels: {self.labels}")
        names = self.output_labels
        if len(set(names)) < len(names):
            raise DataError(f"label_names give two labels the same name: {names}")

    @property
    def output_labels(self):
        """The label names predictions and exports give, in class order (None until
        the labels are known)."""
        if self.labels is None:
            return None
        names = self.label_names or {}
        return [names.get(label, label) for label in self.labels]

    def _name(self, label):
        return (self.label_names or {}).get(str(label), str(label))

    # -- data ------------------------------------------------------------------------------
    @property
    def fields(self):
        return ("text", "text_pair") if self.text_pair else ("text",)

    @property
    def target_fields(self):
        return ("label",)

    def read(self, path, *, text_column=None, pair_column=None, label_column=None,
             **options):
        """Read CSV/TSV/JSONL/pattern lines into `text`, `text_pair`, `label` columns.

        Args:
            path: the file.
            text_column, pair_column, label_column: column names (defaults: the
                usual names, e.g. `text` or `sentence`, `label`).
            **options: `kerabert.data.tables.read_table` options (`format`,
                `skip_bad`, `line_pattern`, `list_separator`, `header`).
        """
        columns = {"text": text_column or TEXT_COLUMNS}
        if self.text_pair:
            columns["text_pair"] = pair_column or PAIR_COLUMNS
        columns["label"] = label_column or LABEL_COLUMNS
        allowed = {"label": set(self.labels)} if self.labels else None
        return read_table(
            path,
            columns,
            required=[f for f in columns if f != "label"],
            allowed=allowed,
            list_fields=("label",) if self.multi_label else (),
            **options,
        )

    def adapt(self, examples):
        check_targets(self, examples, "train on")
        if self.labels is not None:
            return
        values = examples["label"]
        if self.multi_label:
            values = [label for row in values for label in row]
        self.labels = sort_labels(str(v) for v in values)
        self._check_label_names()

    @property
    def num_labels(self):
        if not self.labels:
            raise ValueError(f"head {self.name!r} has no labels yet: pass labels or adapt()")
        return len(self.labels)

    def preprocessor(self, tokenizer, sequence_length):
        return ClassificationPreprocessor(
            tokenizer,
            sequence_length,
            labels=self.labels,
            multi_label=self.multi_label,
            text_pair=self.text_pair,
            name=f"{self.name}_preprocessor",
        )

    # -- layers ----------------------------------------------------------------------------
    def build_outputs(self, backbone_outputs, inputs, backbone=None):
        return dropout_logits(backbone_outputs["pooled_output"], self.num_labels,
                              self.dropout, "classifier_dropout")

    def loss(self):
        if self.multi_label:
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        if self.multi_label:
            return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    # -- outputs ---------------------------------------------------------------------------
    def _thresholds(self):
        if isinstance(self.threshold, dict):
            return np.array([float(self.threshold.get(label, 0.5)) for label in self.labels])
        return np.full(len(self.labels), float(self.threshold))

    def probabilities(self, logits):
        logits = np.asarray(logits, dtype=np.float64)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    # Decoding is `serving_outputs` (softmax or sigmoid, thresholds, argmax in TF ops);
    # this only names the scores and the chosen labels.
    def format_predictions(self, serving, features, examples):
        names = self.output_labels
        results = []
        for row, scores in enumerate(np.asarray(serving["scores"], dtype=np.float64)):
            named = {name: round(float(p), 6) for name, p in zip(names, scores)}
            if self.multi_label:
                chosen = [name for name, hit in zip(names, serving["predicted"][row]) if hit]
                results.append({"labels": chosen, "scores": named})
            else:
                label = serving["label"][row]
                results.append({"label": label.decode("utf-8") if isinstance(label, bytes)
                                else str(label),
                                "score": float(serving["score"][row]), "scores": named})
        return results

    def score(self, predictions, examples):
        if "label" not in examples:
            return {}
        # Predictions carry the label names; the data carries the label values.
        if self.multi_label:
            return _multi_label_scores(
                [set(p["labels"]) for p in predictions],
                [set(map(self._name, gold)) for gold in examples["label"]],
                self.output_labels,
            )
        predicted = [p["label"] for p in predictions]
        gold = [self._name(g) for g in examples["label"]]
        return {
            "accuracy": float(np.mean([p == g for p, g in zip(predicted, gold)])),
            "macro_f1": _macro_f1(predicted, gold, self.output_labels),
            "examples": len(gold),
        }

    def serving_outputs(self, outputs, features):
        names = tf.constant(self.output_labels)
        if self.multi_label:
            scores = tf.sigmoid(tf.cast(outputs, tf.float32))
            chosen = tf.where(scores >= tf.constant(self._thresholds(), tf.float32), 1, 0)
            return {"scores": scores, "predicted": chosen,
                    "label_names": tf.broadcast_to(names, tf.shape(scores))}
        scores = tf.nn.softmax(tf.cast(outputs, tf.float32), axis=-1)
        best = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return {
            "label": tf.gather(names, best),
            "score": tf.reduce_max(scores, axis=-1),
            "scores": scores,
        }

    def search_space(self, hp):
        space = super().search_space(hp)
        space["dropout"] = hp.Choice("dropout", [0.0, 0.1, 0.2])
        return space

    def get_config(self):
        return {
            "labels": self.labels,
            "multi_label": self.multi_label,
            "text_pair": self.text_pair,
            "dropout": self.dropout,
            "threshold": self.threshold,
            "label_names": self.label_names,
        }


class SentimentHead(TextClassificationHead):
    """Sentiment of single texts: multi-class over labels such as negative/positive.

    Args:
        labels: sentiment names (e.g. `["negative", "positive"]`); learned from the
            training data when omitted.
        dropout: dropout rate before the output layer.
        label_names: `{label: name}` for the data's label values, e.g.
            `{"0": "negative", "1": "positive"}`.

    Example:
    ```python
    head = SentimentHead(labels=["0", "1"], label_names={"0": "negative", "1": "positive"})
    ```
    """

    name = "sentiment"

    def __init__(self, labels=None, dropout=0.1, label_names=None):
        super().__init__(labels=labels, dropout=dropout, label_names=label_names)

    def get_config(self):
        return {"labels": self.labels, "dropout": self.dropout,
                "label_names": self.label_names}


def _f1(tp, fp, fn):
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _macro_f1(predicted, gold, labels):
    scores = []
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(predicted, gold))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold))
        if tp + fp + fn:
            scores.append(_f1(tp, fp, fn))
    return float(np.mean(scores)) if scores else 0.0


def _multi_label_scores(predicted, gold, labels):
    tp = sum(len(p & g) for p, g in zip(predicted, gold))
    fp = sum(len(p - g) for p, g in zip(predicted, gold))
    fn = sum(len(g - p) for p, g in zip(predicted, gold))
    per_label = []
    for label in labels:
        ltp = sum(label in p and label in g for p, g in zip(predicted, gold))
        lfp = sum(label in p and label not in g for p, g in zip(predicted, gold))
        lfn = sum(label not in p and label in g for p, g in zip(predicted, gold))
        if ltp + lfp + lfn:
            per_label.append(_f1(ltp, lfp, lfn))
    return {
        "micro_f1": _f1(tp, fp, fn),
        "macro_f1": float(np.mean(per_label)) if per_label else 0.0,
        "exact_match": float(np.mean([p == g for p, g in zip(predicted, gold)])),
        "examples": len(gold),
    }
