"""Token classification (named-entity recognition): words in, one tag per word out.

The model is a dense layer over BERT's `sequence_output`. Each word is labelled on its
first WordPiece; its other pieces are left out of the loss and of the metrics (target
-1, sample weight 0), the choice of the original BERT paper. `label_all_pieces=True`
labels the other pieces too (`B-X` becomes `I-X` on them), which some find helps with
long, rare words; predictions are read from first pieces either way.

Input `text` is either a list of words (CoNLL, JSONL; the alignment of tags to words is
then exact) or a raw string, split into words BERT-style in the graph, with entities
returned as character spans of the original string. See `docs/ner.md`.

Two quality levers, both on for new heads (off for models saved before they existed):
`case_feature` feeds the case class of each word's original text (`word_shape`) into the
output layer, as uncased checkpoints cannot see capitals; `decoding="viterbi"` returns
the most probable tag sequence the scheme allows (`tag_decoding`) instead of each
word's arg-max.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerabert.data.conll import check_scheme, labels_for, read_tagged, split_tag
from kerabert.data.tables import check_targets
from kerabert.heads.base import Head
from kerabert.heads.layers import dropout_logits
from kerabert.heads.tag_decoding import DECODINGS, transitions, viterbi_in_graph
from kerabert.heads.tagging_format import format_predictions as _format_predictions
from kerabert.heads.tagging_preprocessor import TaggingPreprocessor
from kerabert.heads.word_shape import NUM_CASES
from kerabert.metrics.entities import entity_scores


# Registered as `kerabert>TaggedTokenAccuracy`: the masked-LM head has a metric of the
# same class name; models saved under the old shared name still load (`kerabert.task`).
@keras.saving.register_keras_serializable(package="kerabert", name="TaggedTokenAccuracy")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Accuracy over labelled positions only (targets >= 0), for `fit` progress.

    Args:
        name: the metric name.

    Example:
    ```python
    metric = MaskedTokenAccuracy()
    metric.update_state([[1, -1]], [[[0.1, 0.9], [0.9, 0.1]]])
    float(metric.result())  # 1.0
    ```
    """

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        labelled = tf.cast(y_true >= 0, self.dtype)
        hits = tf.cast(tf.equal(y_true, predicted), self.dtype) * labelled
        self.correct.assign_add(tf.reduce_sum(hits))
        self.total.assign_add(tf.reduce_sum(labelled))

    def result(self):
        return tf.math.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


class TokenClassificationHead(Head):
    """Named-entity recognition (token classification) over BERT's sequence output.

    Data fields: `text` (a list of words, or a raw string at prediction time); targets
    in `tags` (one tag per word).

    Args:
        labels: the tags the model predicts, in `scheme` (e.g. `["O", "B-PER",
            "I-PER"]`); learned from the training data (`adapt`) when omitted.
        scheme: the tag scheme of the model's labels, `IOB2` (default) or `BIOES`
            (`IOB1` is accepted too); data in other schemes is converted on reading.
        dropout: dropout rate before the output layer.
        label_all_pieces: label every WordPiece of a word, not only the first.
        stride: pieces between the starts of consecutive windows for sentences longer
            than the sequence length (default: half a window).
        case_feature: feed the model the case class of each word's original text
            (lower, Capitalised, ALL CAPS, mixed, no letters; see
            `kerabert.heads.word_shape`) as a learned `case_dim`-wide embedding beside
            `sequence_output`, before dropout and the output layer. The model then
            takes a fourth input, `case_ids`, which the preprocessor computes. On by
            default: the default checkpoint is uncased, and capitalisation is among the
            strongest cues of CoNLL's PER, ORG and MISC; for a cased checkpoint it is
            redundant but costs only `6 * case_dim + case_dim * labels` weights. A
            config without the key (a model saved before the option) means off.
        case_dim: the width of the case embedding.
        decoding: `"viterbi"` (default): the most probable tag sequence that is
            valid in `scheme` (no `I-X` after `O` in IOB2, ...; see
            `kerabert.heads.tag_decoding`); `"argmax"`: each word's most probable tag,
            invalid sequences read by the CoNLL rule. Both report each word's
            probability of its chosen tag. A config without the key means `"argmax"`.

    Example:
    ```python
    head = TokenClassificationHead(labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    model = kerabert.build_model(head, backbone="all-minilm-l6-v2")
    model.predict_examples({"text": ["John Smith lives in Paris."]})
    # [{"entities": [{"text": "John Smith", "type": "PER", "start": 0, "end": 10, ...}]}]
    ```
    """

    name = "ner"
    recipe = {"epochs": 4, "learning_rate": 1e-4, "warmup_ratio": 0.1,
              "sequence_length": 128}
    token_level_targets = True

    def __init__(self, labels=None, scheme="IOB2", dropout=0.1, label_all_pieces=False,
                 stride=None, case_feature=True, case_dim=16, decoding="viterbi"):
        self.scheme = check_scheme(scheme)
        self.labels = [str(label) for label in labels] if labels else None
        if self.labels:
            self._check_labels(self.labels)
        self.dropout = float(dropout)
        self.label_all_pieces = bool(label_all_pieces)
        self.stride = int(stride) if stride else None
        self.case_feature = bool(case_feature)
        self.case_dim = int(case_dim)
        if self.case_dim < 1:
            raise ValueError(f"case_dim must be a positive integer, got {case_dim!r}")
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, got "
                             f"{decoding!r}")
        self.decoding = decoding

    def _check_labels(self, labels):
        for label in labels:
            prefix, _ = split_tag(label)
            if prefix is None or (prefix != "O" and prefix not in
                                  ("BIES" if self.scheme == "BIOES" else "BI")):
                raise ValueError(f"label {label!r} is not a {self.scheme} tag")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {labels}")

    # -- data ------------------------------------------------------------------------------
    @property
    def fields(self):
        return ("text",)

    @property
    def target_fields(self):
        return ("tags",)

    def read(self, path, *, format=None, text_column=None, label_column=None,
             skip_bad=False, **options):
        """Read a CoNLL-style or JSONL file into `text` (word lists) and `tags`.

        Args:
            path: the file.
            format: `conll` or `jsonl` (default: `jsonl` for `.jsonl`/`.json`).
            text_column, label_column: the word and tag column (CoNLL: indices;
                JSONL: keys; defaults 0 and the last column, `tokens` and `tags`).
            skip_bad: skip (and count) bad sentences instead of raising.
            **options: `kerabert.data.conll` reader options: `separator`, `scheme`
                (the file's scheme; detected by default), `tag_names`, ...
        """
        from pathlib import Path

        jsonl = (format or ("jsonl" if Path(path).suffix.lower() in (".jsonl", ".json")
                            else "conll")) == "jsonl"
        options.pop("line_pattern", None)
        options.pop("pair_column", None)
        if text_column is not None:
            options["tokens_key" if jsonl else "token_column"] = text_column
        if label_column is not None:
            options["tags_key" if jsonl else "tag_column"] = label_column
        return read_tagged(path, format=format, target_scheme=self.scheme,
                           labels=self.labels, skip_bad=skip_bad, **options)

    def adapt(self, examples):
        check_targets(self, examples, "train on")
        if self.labels is not None:
            return
        kinds = set()
        for tags in examples["tags"]:
            for tag in tags:
                prefix, kind = split_tag(tag)
                if prefix is None:
                    raise ValueError(f"tag {tag!r} is neither O nor PREFIX-TYPE")
                if kind:
                    kinds.add(kind)
        self.labels = labels_for(kinds, self.scheme)

    @property
    def num_labels(self):
        if not self.labels:
            raise ValueError(f"head {self.name!r} has no labels yet: pass labels or adapt()")
        return len(self.labels)

    def continuation_labels(self):
        """For each label id, the label of a word's later pieces (`label_all_pieces`):
        `I-X` inside an entity, `O` outside; -1 (unlabelled) after BIOES `E-`/`S-`."""
        index = {label: i for i, label in enumerate(self.labels)}
        out = []
        for label in self.labels:
            prefix, kind = split_tag(label)
            if prefix in ("B", "I"):
                out.append(index.get(f"I-{kind}", index[label]))
            elif prefix == "O":
                out.append(index[label])
            else:
                out.append(-1)
        return out

    def preprocessor(self, tokenizer, sequence_length):
        return TaggingPreprocessor(
            tokenizer,
            sequence_length,
            labels=self.labels,
            continuation_labels=self.continuation_labels()
            if self.label_all_pieces and self.labels else None,
            stride=self.stride,
            case_ids=self.case_feature,
            name=f"{self.name}_preprocessor",
        )

    def extra_inputs(self):
        if not self.case_feature:
            return {}
        return {"case_ids": keras.Input(shape=(None,), dtype="int32", name="case_ids")}

    # -- layers ----------------------------------------------------------------------------
    def build_outputs(self, backbone_outputs, inputs, backbone=None):
        x = backbone_outputs["sequence_output"]
        if self.case_feature:
            # Unit scale, like the layer-normalised sequence output beside it, so the
            # output layer learns its weights at the same pace at fine-tuning rates.
            case = keras.layers.Embedding(
                NUM_CASES, self.case_dim,
                embeddings_initializer=keras.initializers.TruncatedNormal(stddev=1.0),
                name="case_embedding")(inputs["case_ids"])
            x = keras.layers.Concatenate(name="case_concat")([x, case])
        return dropout_logits(x, self.num_labels, self.dropout, "tagger_dropout")

    def loss(self):
        # Unlabelled positions carry target -1 and weight 0; the mean is over labels.
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=-1, reduction="mean_with_sample_weight"
        )

    def metrics(self):
        return [MaskedTokenAccuracy(name="accuracy")]

    # -- outputs ---------------------------------------------------------------------------
    # Decoding is written once, in TF ops (`serving_outputs`, Viterbi included); the
    # base `decode` runs it and this shapes the rows (contract 2).
    format_predictions = _format_predictions

    def score(self, predictions, examples):
        if "tags" not in examples:
            return {}
        if any(isinstance(text, str) for text in examples["text"]):
            raise ValueError("scoring needs pre-split words (a list per example), as the "
                             "CoNLL and JSONL readers give")
        return entity_scores(examples["tags"], [p["tags"] for p in predictions], self.scheme)

    def serving_outputs(self, outputs, features):
        """In-graph decoding: per-word tags and per-entity spans, as dense tensors.

        Returns (`B` examples, `W` = most words, `E` = most entities in the batch):
        `tags` `[B, W]` string (`""` past each example's words), `tag_ids` (-1 past
        the end), `tag_scores` (probability of each tag), `word_starts`/`word_ends`
        (character offsets in the raw string; -1 for pre-split words and past the end),
        `num_words` `[B]`; `entity_types` `[B, E]` string, `entity_starts`,
        `entity_ends` (character offsets), `entity_word_starts`, `entity_word_ends`
        (word indices, end exclusive), `entity_scores` (mean tag probability) and
        `num_entities` `[B]`. Tags are chosen as `decode` chooses them (`decoding`), and
        entities are read as `decode` reads them (an `I-X` after `O` or another type
        starts an entity).
        """
        logits = tf.cast(outputs, tf.float32)
        example_index = tf.cast(features["example_index"], tf.int32)
        word_index = tf.cast(features["word_index"], tf.int32)
        batch = tf.reduce_max(example_index) + 1
        width = tf.maximum(tf.reduce_max(word_index) + 1, 1)
        where = tf.where(tf.cast(features["label_mask"], tf.int32) > 0)
        rows = tf.cast(where[:, 0], tf.int32)
        target = tf.stack([tf.gather(example_index, rows), tf.gather_nd(word_index, where)],
                          axis=1)
        shape = tf.stack([batch, width])

        def scatter(values, fill):
            # Shifted by one so that empty cells come out as `fill`.
            values = tf.cast(tf.gather_nd(values, where), tf.float32)
            placed = tf.scatter_nd(target, values - fill + 1.0, shape)
            present = tf.scatter_nd(target, tf.ones_like(values), shape) > 0
            return tf.where(present, placed + fill - 1.0, fill), present

        # Per-word logits `[B, W, labels]`, read at each word's first piece.
        word_logits = tf.scatter_nd(target, tf.gather_nd(logits, where),
                                    tf.concat([shape, [len(self.labels)]], axis=0))
        present = tf.scatter_nd(target, tf.ones_like(rows), shape) > 0
        probabilities = tf.nn.softmax(word_logits, axis=-1)
        if self.decoding == "argmax":
            tag_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        else:
            tag_ids = viterbi_in_graph(tf.nn.log_softmax(word_logits, axis=-1), present,
                                       *transitions(self.labels, self.scheme))
        chosen = tf.one_hot(tag_ids, len(self.labels), dtype=probabilities.dtype)
        tag_scores = tf.where(present, tf.reduce_sum(probabilities * chosen, axis=-1), 0.0)
        tag_ids = tf.where(present, tag_ids, -1)
        word_starts, _ = scatter(tf.cast(features["word_start"], tf.int32), -1.0)
        word_ends, _ = scatter(tf.cast(features["word_end"], tf.int32), -1.0)
        word_starts, word_ends = tf.cast(word_starts, tf.int32), tf.cast(word_ends, tf.int32)
        names = tf.constant(self.labels + [""])
        tags = tf.gather(names, tf.where(present, tag_ids, len(self.labels)))

        # Entities: a word starts one if its tag begins an entity (B-, S-) or cannot
        # continue the previous word's entity (another type, or O before it).
        kinds = sorted({split_tag(label)[1] for label in self.labels} - {""})
        kind_of = [kinds.index(split_tag(label)[1]) + 1 if split_tag(label)[1] else 0
                   for label in self.labels] + [0]
        opens = [1 if split_tag(label)[0] in ("B", "S") else 0 for label in self.labels] + [0]
        safe_ids = tf.where(present, tag_ids, len(self.labels))
        kind = tf.gather(tf.constant(kind_of, tf.int32), safe_ids)
        previous = tf.concat([tf.zeros_like(kind[:, :1]), kind[:, :-1]], axis=1)
        inside = kind > 0
        begins = inside & ((tf.gather(tf.constant(opens, tf.int32), safe_ids) > 0)
                           | (previous != kind))
        begins_int = tf.where(begins, 1, 0)
        number = tf.cumsum(begins_int, axis=1) - 1
        num_entities = tf.reduce_sum(begins_int, axis=1)
        most = tf.reduce_max(num_entities)
        slots = batch * width
        segments = tf.where(inside, tf.range(batch)[:, tf.newaxis] * width + number, slots)
        positions = tf.broadcast_to(tf.range(width)[tf.newaxis, :], tf.shape(kind))

        def per_entity(op, values):
            out = op(values, segments, slots + 1)[:slots]
            return tf.reshape(out, shape)[:, :most]

        counts = per_entity(tf.math.unsorted_segment_sum, tf.where(inside, 1.0, 0.0))
        has = counts > 0
        entity_kind = per_entity(tf.math.unsorted_segment_max, kind)
        type_names = tf.constant([""] + kinds)
        return {
            "tags": tags,
            "tag_ids": tf.where(present, tag_ids, -1),
            "tag_scores": tag_scores,
            "word_starts": word_starts,
            "word_ends": word_ends,
            "num_words": tf.reduce_sum(tf.where(present, 1, 0), axis=1),
            "entity_types": tf.gather(type_names, tf.where(has, entity_kind, 0)),
            "entity_starts": tf.where(
                has, per_entity(tf.math.unsorted_segment_min, word_starts), -1),
            "entity_ends": tf.where(
                has, per_entity(tf.math.unsorted_segment_max, word_ends), -1),
            "entity_word_starts": tf.where(
                has, per_entity(tf.math.unsorted_segment_min, positions), -1),
            "entity_word_ends": tf.where(
                has, per_entity(tf.math.unsorted_segment_max, positions) + 1, -1),
            "entity_scores": tf.math.divide_no_nan(
                per_entity(tf.math.unsorted_segment_sum, tag_scores), counts),
            "num_entities": num_entities,
        }

    def search_space(self, hp):
        space = super().search_space(hp)
        space["dropout"] = hp.Choice("dropout", [0.0, 0.1, 0.2])
        return space

    def get_config(self):
        return {
            "labels": self.labels,
            "scheme": self.scheme,
            "dropout": self.dropout,
            "label_all_pieces": self.label_all_pieces,
            "stride": self.stride,
            "case_feature": self.case_feature,
            "case_dim": self.case_dim,
            "decoding": self.decoding,
        }

    @classmethod
    def from_config(cls, config):
        # Models saved before these options had neither: keep them as they were.
        config = dict(config)
        config.setdefault("case_feature", False)
        config.setdefault("decoding", "argmax")
        return super().from_config(config)
