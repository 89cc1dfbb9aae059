"""Sentence-pair similarity regression: a graded score for two texts (STS-style).

A cross-encoder: both texts are packed into one BERT input (`[CLS] a [SEP] b [SEP]`),
pooled (mean over tokens, or BERT's pooled `[CLS]`), and one sigmoid unit predicts the
score rescaled to [0, 1]; predictions are mapped back to the data's score range
(e.g. 0-5 for STS-B). Evaluation reports Pearson's r and Spearman's rho, as the STS
benchmarks do.

Built only on kerabert's public API: `kerabert.heads.Head`, `kerabert.tokenizer`,
`kerabert.data`.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf

from kerabert.data import DataError, read_table
from kerabert.heads import Head

from kerabert_sts.correlation import pearson, spearman

TEXT_COLUMNS = ("sentence1", "text", "sentence_a", "question1")
PAIR_COLUMNS = ("sentence2", "text_pair", "sentence_b", "question2")
SCORE_COLUMNS = ("score", "similarity", "label", "relatedness_score")
POOLINGS = ("mean", "cls")
LOSSES = ("mse", "bce")


class SimilarityPreprocessor(keras.layers.Layer):
    """Raw `text`, `text_pair` (and `score`) batches -> BERT pair inputs and targets.

    Targets are the scores rescaled to [0, 1] over `score_range`, shape `[batch, 1]`.

    Args:
        tokenizer: a `kerabert.tokenizer.BertTokenizer`.
        sequence_length: the packed length of both texts together.
        score_range: `(lowest, highest)` score; needed only for batches with scores.
    """

    def __init__(self, tokenizer, sequence_length, score_range=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.score_range = tuple(score_range) if score_range else None

    def call(self, batch):
        features = self.tokenizer.pack(
            [self.tokenizer(batch["text"]), self.tokenizer(batch["text_pair"])],
            self.sequence_length,
        )
        if "score" not in batch:
            return features, None, None
        if not self.score_range:
            raise ValueError("the head has no score_range: pass one or call head.adapt(examples)")
        low, high = self.score_range
        scores = tf.cast(batch["score"], tf.float32)
        check = tf.debugging.assert_less_equal(
            tf.abs(scores - (low + high) / 2), (high - low) / 2 + 1e-6,
            message=f"a score outside the head's score_range {self.score_range}",
        )
        with tf.control_dependencies([check]):
            targets = (scores - low) / (high - low)
        return features, targets[:, tf.newaxis], None


class SentenceSimilarityHead(Head):
    """Similarity of two texts as a graded score (STS-B style regression).

    Data fields: `text` and `text_pair`; target `score`, a number in `score_range`.
    Files: CSV/TSV/JSONL with columns such as `sentence1`, `sentence2`, `score`
    (the STS-B layout).

    Args:
        score_range: `(lowest, highest)` possible score, e.g. `(0, 5)` for STS-B;
            learned from the training data (its min and max) when omitted.
        pooling: `"mean"`: average of the token vectors (sentence-transformers'
            pooling, right for all-MiniLM-L6-v2); `"cls"`: BERT's pooled `[CLS]`.
        dropout: dropout rate before the output unit.
        loss: `"mse"` on the rescaled score, or `"bce"` (binary cross-entropy with
            the rescaled score as a soft target, as sentence-transformers'
            CrossEncoder trains).

    Example:
    ```python
    import kerabert
    model = kerabert.build_model("sentence-similarity", score_range=(0, 5))
    model.predict_examples({"text": ["A man plays a guitar."],
                            "text_pair": ["Someone plays music."]})
    # [{'score': ...}]
    ```
    """

    name = "sentence-similarity"
    # The head contract this head is written for; kerabert's registry refuses the
    # head, with a message naming both versions, if it implements another one.
    contract_version = 2
    # The `score` metric `kerabert tune` maximizes (the STS benchmarks rank by it).
    objective = "spearman"

    def __init__(self, score_range=None, pooling="mean", dropout=0.1, loss="mse"):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.score_range = None
        if score_range is not None:
            low, high = (float(v) for v in score_range)
            if not high > low:
                raise ValueError(f"score_range must be (lowest, highest), got {score_range!r}")
            self.score_range = [low, high]
        self.pooling = pooling
        self.dropout = float(dropout)
        self.loss_name = loss

    # -- data ------------------------------------------------------------------------------
    @property
    def fields(self):
        return ("text", "text_pair")

    @property
    def target_fields(self):
        return ("score",)

    def read(self, path, *, text_column=None, pair_column=None, score_column=None,
             label_column=None, skip_bad=False, **options):
        """Read CSV/TSV/JSONL rows into `text`, `text_pair` and `score` columns.

        A score that is not a number, or lies outside `score_range`, raises
        `DataError` naming the file and line (or is skipped and counted with
        `skip_bad=True`).

        Args:
            path: the file.
            text_column, pair_column, score_column: column names (defaults:
                `sentence1`/`text`, `sentence2`/`text_pair`, `score`/`similarity`/`label`).
            label_column: the same as `score_column` (the CLI's `--label-column`).
            skip_bad: skip and count bad rows instead of raising.
            **options: `kerabert.data.read_table` options (`format`, `header`).
        """
        columns = {
            "text": text_column or TEXT_COLUMNS,
            "text_pair": pair_column or PAIR_COLUMNS,
            "score": score_column or label_column or SCORE_COLUMNS,
        }
        examples = read_table(path, columns, required=("text", "text_pair"),
                              skip_bad=skip_bad, **options)
        if "score" not in examples:
            return examples  # unlabelled pairs, for prediction
        keep, scores = [], []
        for index, (value, line) in enumerate(zip(examples["score"], examples.lines)):
            problem = self._score_problem(value)
            if problem is None:
                keep.append(index)
                scores.append(float(value))
            elif skip_bad:
                continue
            else:
                raise DataError(f"{path}:{line}: {problem}")
        kept = examples.take(keep)
        kept["score"] = scores
        if len(keep) < len(examples):
            kept.skipped += len(examples) - len(keep)
            print(f"{path}: skipped {len(examples) - len(keep)} row(s) with a bad score",
                  file=sys.stderr)
        if not keep:
            raise DataError(f"{path}: no usable rows")
        return kept

    def _score_problem(self, value):
        try:
            score = float(value)
        except (TypeError, ValueError):
            return f"score {value!r} is not a number"
        if not np.isfinite(score):
            return f"score {value!r} is not a finite number"
        if self.score_range and not self.score_range[0] <= score <= self.score_range[1]:
            return f"score {score:g} is outside score_range {tuple(self.score_range)}"
        return None

    def adapt(self, examples):
        if self.score_range is not None:
            return
        if "score" not in examples:
            raise ValueError("cannot learn score_range: the training data has no score column")
        scores = np.asarray(examples["score"], dtype=np.float64)
        low, high = float(scores.min()), float(scores.max())
        if not high > low:
            raise ValueError(f"cannot learn score_range: every training score is {low:g}")
        self.score_range = [low, high]

    def preprocessor(self, tokenizer, sequence_length):
        return SimilarityPreprocessor(
            tokenizer, sequence_length, score_range=self.score_range,
            name=f"{self.name.replace('-', '_')}_preprocessor",
        )

    # -- layers ----------------------------------------------------------------------------
    def build_outputs(self, backbone_outputs, inputs, backbone=None):
        if self.pooling == "mean":
            # keras' masked average: padding positions do not dilute the mean.
            pooled = keras.layers.GlobalAveragePooling1D(name="mean_pooling")(
                backbone_outputs["sequence_output"], mask=inputs["padding_mask"]
            )
        else:
            pooled = backbone_outputs["pooled_output"]
        x = keras.layers.Dropout(self.dropout, name="similarity_dropout")(pooled)
        return keras.layers.Dense(
            1,
            activation="sigmoid",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",  # the score stays float32 under mixed precision
            name="similarity",
        )(x)

    def loss(self):
        if self.loss_name == "bce":
            return keras.losses.BinaryCrossentropy()
        return keras.losses.MeanSquaredError()

    def metrics(self):
        # On the rescaled [0, 1] score; Pearson/Spearman come from `score`.
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    # -- outputs ---------------------------------------------------------------------------
    def _rescale(self, unit_scores):
        low, high = self.score_range
        return low + (high - low) * unit_scores

    # Decoding is `serving_outputs` (contract 2 derives `decode` from it); this only
    # rounds the score for printing.
    def format_predictions(self, serving, features, examples):
        return [{"score": round(float(s), 6)} for s in serving["score"]]

    def score(self, predictions, examples):
        if "score" not in examples:
            return {}
        predicted = np.array([p["score"] for p in predictions], dtype=np.float64)
        gold = np.asarray(examples["score"], dtype=np.float64)
        return {
            "pearson": pearson(predicted, gold),
            "spearman": spearman(predicted, gold),
            "mse": float(np.mean((predicted - gold) ** 2)),
            "examples": int(len(gold)),
        }

    def serving_outputs(self, outputs, features):
        unit = tf.reshape(tf.cast(outputs, tf.float32), [-1])
        low, high = self.score_range
        return {"score": low + (high - low) * unit}

    def search_space(self, hp):
        space = super().search_space(hp)
        space["dropout"] = hp.Choice("dropout", [0.0, 0.1, 0.2])
        return space

    def get_config(self):
        return {
            "score_range": list(self.score_range) if self.score_range else None,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "loss": self.loss_name,
        }
