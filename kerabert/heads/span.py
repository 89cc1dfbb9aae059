"""Extractive question answering (SQuAD 1.1 and 2.0): answer spans in the context.

A dense layer over BERT's `sequence_output` gives a start and an end logit per
token, as Google's `run_squad.py` and keras-hub's BERT tasks do. Questions with long
contexts are split into overlapping windows (`span_preprocessor`); decoding merges
the windows of a question and maps the best span back to the exact substring of the
original context (`span_decoding`). Scores are the official SQuAD exact match and F1
(`kerabert.metrics.squad`).
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf

from kerabert.data.squad import read_squad
from kerabert.data.tables import DataError
from kerabert.heads.base import Head
from kerabert.heads.span_decoding import decode_answers, decode_answers_in_graph
from kerabert.heads.span_preprocessor import QuestionAnsweringPreprocessor
from kerabert.metrics.squad import squad_scores

# Logits of padding positions: low enough to never win a softmax or a span.
_MASKED_LOGIT = -1e4


@keras.saving.register_keras_serializable(package="kerabert")
class SpanLogits(keras.layers.Layer):
    """Start and end logits per token: `[batch, length, hidden]` -> `[batch, 2, length]`.

    Padding positions get a large negative logit, so they are never predicted and
    take no probability mass in the loss.

    Args:
        kernel_initializer: the initializer of the dense layer.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    ```python
    logits = SpanLogits()(sequence_output, padding_mask)  # [batch, 2, length]
    ```
    """

    def __init__(self, kernel_initializer="truncated_normal", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense = keras.layers.Dense(
            2, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy,
            name="start_end",
        )

    def build(self, sequence_output_shape, padding_mask_shape=None):
        self.dense.build(sequence_output_shape)

    def call(self, sequence_output, padding_mask):
        logits = keras.ops.transpose(self.dense(sequence_output), (0, 2, 1))
        logits = keras.ops.cast(logits, "float32")
        keep = keras.ops.cast(keras.ops.expand_dims(padding_mask, 1), "float32")
        return logits * keep + (1.0 - keep) * _MASKED_LOGIT

    def compute_output_shape(self, sequence_output_shape, padding_mask_shape=None):
        return (sequence_output_shape[0], 2, sequence_output_shape[1])

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config


class QuestionAnsweringHead(Head):
    """Extractive QA: the answer to a question as a span of its context.

    Data fields: `question`, `context`; targets `answer_start` (character offset, -1
    for no answer) and `answer_text` (the first gold answer), as `read` gives them
    from SQuAD JSON or JSON lines, which also keep every gold answer in `answers`
    for scoring.

    Args:
        max_query_length: question tokens kept.
        doc_stride: context tokens between the starts of consecutive windows.
        max_answer_length: the longest answer, in tokens.
        n_best_size: spans kept per question for the n-best list.
        allow_no_answer: SQuAD 2.0: a question may have no answer. `None` (default)
            learns it from the training data (any question without an answer).
        null_threshold: answer "no answer" when the null score beats the best span
            by more than this (tune it on dev data, as run_squad.py's
            `null_score_diff_threshold`).
        return_n_best: also return this many best answers per question (0: off).

    Example:
    ```python
    head = QuestionAnsweringHead(doc_stride=128)
    model = kerabert.build_model(head, "all-minilm-l6-v2", sequence_length=256)
    model.predict_examples({"question": ["Who?"], "context": ["John Smith did it."]})
    # [{'answer': 'John Smith', 'score': ..., 'start': 0, 'end': 10}]
    ```
    """

    name = "qa"
    recipe = {"epochs": 2, "learning_rate": 1e-4, "warmup_ratio": 0.1,
              "sequence_length": 384}

    def __init__(self, max_query_length=64, doc_stride=128, max_answer_length=30,
                 n_best_size=20, allow_no_answer=None, null_threshold=0.0, return_n_best=0):
        self.max_query_length = int(max_query_length)
        self.doc_stride = int(doc_stride)
        self.max_answer_length = int(max_answer_length)
        self.n_best_size = int(n_best_size)
        self.allow_no_answer = None if allow_no_answer is None else bool(allow_no_answer)
        self.null_threshold = float(null_threshold)
        self.return_n_best = int(return_n_best)

    # -- data ------------------------------------------------------------------------------
    @property
    def fields(self):
        return ("question", "context")

    @property
    def target_fields(self):
        return ("answer_start", "answer_text")

    def read(self, path, *, format=None, skip_bad=False, **options):
        """Read SQuAD JSON (v1.1, v2.0) or JSON lines; see `kerabert.data.squad`.

        Args:
            path: the file.
            format: `"squad"` or `"jsonl"` (guessed from the file when omitted).
            skip_bad: skip and count bad questions instead of raising `DataError`.
        """
        unknown = {k: v for k, v in options.items() if v is not None}
        if unknown:
            raise DataError(f"{path}: the qa reader has no option(s) {sorted(unknown)}")
        return read_squad(path, format=format, skip_bad=skip_bad)

    def adapt(self, examples):
        if self.allow_no_answer is None and "answer_start" in examples:
            self.allow_no_answer = any(int(s) < 0 for s in examples["answer_start"])

    def prepare_examples(self, examples, tokenizer, sequence_length, *, skip_bad=False):
        """Check that every answer fits in a window; count the windows.

        An answer longer than a window (or one that covers no token) can never be
        learned: it raises `DataError` naming the file and the question id, or is
        skipped and counted with `skip_bad`.

        Returns:
            `(examples, windows)`: the usable examples and their number of windows.
        """
        preprocessor = self.preprocessor(tokenizer, sequence_length)
        fields = ("question", "context", "answer_start", "answer_text")

        @tf.function
        def check(batch):
            features, targets, _ = preprocessor(batch)
            index = features["example_index"]
            count = tf.shape(batch["question"])[0]
            found = tf.math.unsorted_segment_max(targets[:, 0], index, count)
            windows = tf.math.unsorted_segment_sum(tf.ones_like(index), index, count)
            return found > 0, windows

        keep, bad, windows = [], [], 0
        for start in range(0, len(examples), 512):
            batch = {f: tf.constant(examples[f][start : start + 512]) for f in fields}
            found, counts = check(batch)
            for offset, (ok, count) in enumerate(zip(found.numpy(), counts.numpy())):
                row = start + offset
                if ok or int(examples["answer_start"][row]) < 0:
                    keep.append(row)
                    windows += int(count)
                else:
                    bad.append(row)
        if not bad:
            return examples, windows
        source = getattr(examples, "source", "") or "(examples)"
        if not skip_bad:
            row = bad[0]
            qid = examples["id"][row] if "id" in examples else row
            raise DataError(
                f"{source}: question {qid!r}: the answer {examples['answer_text'][row]!r} "
                f"fits in no window of {sequence_length} tokens ({len(bad)} such "
                "question(s)); raise the sequence length, or skip them with skip_bad"
            )
        print(f"{source}: skipped {len(bad)} question(s) whose answer fits in no window",
              file=sys.stderr)
        kept = examples.take(keep) if hasattr(examples, "take") else {
            k: [v[i] for i in keep] for k, v in examples.items()
        }
        if hasattr(kept, "skipped"):
            kept.skipped += len(bad)
        return kept, windows

    def preprocessor(self, tokenizer, sequence_length):
        return QuestionAnsweringPreprocessor(
            tokenizer,
            sequence_length,
            max_query_length=self.max_query_length,
            doc_stride=self.doc_stride,
            name=f"{self.name}_preprocessor",
        )

    # -- layers ----------------------------------------------------------------------------
    def build_outputs(self, backbone_outputs, inputs, backbone=None):
        return SpanLogits(
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="span_logits",
        )(backbone_outputs["sequence_output"], inputs["padding_mask"])

    def loss(self):
        # Targets [windows, 2] (start, end) against logits [windows, 2, length]: the
        # mean of the start and end cross-entropies, as run_squad.py.
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="position_accuracy")]

    # -- outputs ---------------------------------------------------------------------------
    def _decode_options(self):
        return {
            "max_answer_length": self.max_answer_length,
            "allow_no_answer": bool(self.allow_no_answer),
            "null_threshold": self.null_threshold,
        }

    # A hand-written numpy decode, kept: the n-best lists (`return_n_best`) exist only
    # here, and it is run_squad.py's reference decoding; `check_head` compares its
    # 1-best answers with `serving_outputs` (same keys: answer, score, start, end).
    def decode(self, outputs, features, examples):
        outputs = np.asarray(outputs)
        return decode_answers(
            outputs[:, 0], outputs[:, 1], features, examples["context"],
            n_best_size=self.n_best_size, return_n_best=self.return_n_best,
            **self._decode_options(),
        )

    def score(self, predictions, examples):
        if "answers" in examples:
            golds = examples["answers"]
        elif "answer_text" in examples:
            golds = [[t] if t else [] for t in examples["answer_text"]]
        else:
            return {}
        version = "2.0" if self.allow_no_answer or any(not g for g in golds) else "1.1"
        result = squad_scores([p["answer"] for p in predictions], golds, version=version)
        result["squad_version"] = version
        return result

    def serving_outputs(self, outputs, features):
        outputs = tf.convert_to_tensor(outputs)
        return decode_answers_in_graph(outputs[:, 0], outputs[:, 1], features,
                                       **self._decode_options())

    def search_space(self, hp):
        space = super().search_space(hp)
        space["learning_rate"] = hp.Choice("learning_rate", [3e-5, 5e-5, 1e-4])
        space["epochs"] = hp.Int("epochs", 1, 3)
        return space

    def get_config(self):
        return {
            "max_query_length": self.max_query_length,
            "doc_stride": self.doc_stride,
            "max_answer_length": self.max_answer_length,
            "n_best_size": self.n_best_size,
            "allow_no_answer": self.allow_no_answer,
            "null_threshold": self.null_threshold,
            "return_n_best": self.return_n_best,
        }
