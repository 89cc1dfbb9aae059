"""Question + context -> overlapping BERT windows, in the TensorFlow graph.

Each question is WordPiece-tokenized and cut to `max_query_length` tokens; its
context is tokenized once and split into windows of at most
`sequence_length - 3 - question_tokens` tokens that start every `doc_stride` tokens,
as Google's `run_squad.py` does. Every window becomes one packed row
`[CLS] question [SEP] context window [SEP]` carrying:

- `example_index`: the row of its question in the raw batch (windows of one question
  are adjacent and in order), so decoding can merge them;
- `offset_starts`, `offset_ends`: per position, the character offsets `[start, end)`
  of the token in the original context (`-1` outside the context). tensorflow-text
  gives byte offsets; they are turned into character offsets by counting the UTF-8
  lead bytes before them;
- `max_context`: 1 where this window gives the token its most context (the
  reference's `token_is_max_context`), so an answer is only started there;
- `context`: the raw context of the window's question (for in-graph decoding).

With `answer_start` / `answer_text` in the batch, targets are the packed `[start,
end]` positions of the answer in each window, or `[0, 0]` (`[CLS]`) when the answer
is not wholly inside the window or the question has no answer, as in the reference.

Everything is dense tensor arithmetic (gathers, comparisons, `cumsum`), because a
window count that differs per question cannot use `pack_inputs`'s ragged segments
without rebuilding ragged rows from windows that are already dense.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerabert.heads.utf8 import byte_to_char_offsets

# Character offsets per token: only context tokens have them.
NO_OFFSET = -1
# Score scale of the reference's max-context rule `min(left, right) + 0.01 * length`,
# kept in integers: lengths stay below 1000.
_CONTEXT_SCALE = 1000


@keras.saving.register_keras_serializable(package="kerabert")
class QuestionAnsweringPreprocessor(keras.layers.Layer):
    """Raw `question` + `context` batches -> windows of BERT inputs (and targets).

    Args:
        tokenizer: a `kerabert.tokenizer.BertTokenizer`.
        sequence_length: the packed length of every window.
        max_query_length: question tokens kept (at most `sequence_length - 4`).
        doc_stride: context tokens between the starts of consecutive windows.

    Returns (from `call`):
        `(features, targets, None)`; `features` has `[windows, sequence_length]`
        `token_ids`, `segment_ids`, `padding_mask`, `offset_starts`, `offset_ends`,
        `max_context` and `[windows]` `example_index`, `context`; `targets` is an
        int32 `[windows, 2]` of answer start/end positions, or None without
        `answer_start` in the batch.

    Example:
    ```python
    preprocessor = QuestionAnsweringPreprocessor(tokenizer, 128, doc_stride=64)
    features, targets, _ = preprocessor({
        "question": tf.constant(["Who?"]), "context": tf.constant(["John Smith did."]),
        "answer_start": tf.constant([0]), "answer_text": tf.constant(["John Smith"]),
    })
    ```
    """

    def __init__(self, tokenizer, sequence_length, max_query_length=64, doc_stride=128,
                 **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if sequence_length < 8:
            raise ValueError(f"sequence_length {sequence_length} is too short for QA windows")
        if doc_stride < 1:
            raise ValueError(f"doc_stride must be positive, got {doc_stride}")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        # At least one context token per window, whatever the question.
        self.max_query_length = min(int(max_query_length), self.sequence_length - 4)
        self.doc_stride = int(doc_stride)

    def call(self, batch):
        length = self.sequence_length
        question = tf.reshape(batch["question"], [-1])
        context = tf.reshape(batch["context"], [-1])

        question_ids = self.tokenizer(question)
        # Truncated densely: slicing the ragged dimension lowers to RaggedRange (no TFLite
        # kernel).
        question_lengths = tf.minimum(
            tf.cast(question_ids.row_lengths(), tf.int32), self.max_query_length
        )
        question_ids = question_ids.to_tensor(default_value=self.tokenizer.pad_id)
        question_ids = question_ids[:, : self.max_query_length]
        # A padding column keeps the gathers valid when every question is empty.
        question_ids = tf.pad(question_ids, [[0, 0], [0, 1]])
        context_ids, byte_starts, byte_ends = self.tokenizer.tokenize_with_offsets(context)
        context_lengths = tf.cast(context_ids.row_lengths(), tf.int32)
        context_ids = context_ids.to_tensor(default_value=self.tokenizer.pad_id)
        char_starts = byte_to_char_offsets(context, byte_starts.to_tensor())
        char_ends = byte_to_char_offsets(context, byte_ends.to_tensor())

        # Windows per question, as run_squad.py: starts 0, stride, 2 * stride, ...
        # until a window reaches the end of the context.
        window_size = length - 3 - question_lengths
        stride = tf.minimum(self.doc_stride, window_size)
        extra = tf.maximum(context_lengths - window_size, 0)
        num_windows = 1 + (extra + stride - 1) // stride
        ends = tf.cumsum(num_windows)
        total = tf.reduce_sum(num_windows)
        window_ids = tf.range(total)
        # Dense "repeat": the example of window w is the number of examples ending at or
        # before w (no ragged ops, for TFLite).
        example_index = tf.reduce_sum(
            tf.where(ends[tf.newaxis, :] <= window_ids[:, tf.newaxis], 1, 0), axis=1
        )
        window_number = window_ids - tf.gather(ends - num_windows, example_index)

        def per_window(values):
            return tf.gather(values, example_index)

        w_stride = per_window(stride)
        w_size = per_window(window_size)
        w_context_length = per_window(context_lengths)
        w_question_length = per_window(question_lengths)
        w_start = window_number * w_stride
        w_length = tf.minimum(w_context_length - w_start, w_size)
        w_num_windows = per_window(num_windows)

        positions = tf.broadcast_to(tf.range(length)[tf.newaxis, :], [total, length])
        context_first = (w_question_length + 2)[:, tf.newaxis]  # packed position of token 0
        context_last = context_first + w_length[:, tf.newaxis]  # the final [SEP]
        in_question = (positions >= 1) & (positions <= w_question_length[:, tf.newaxis])
        in_context = (positions >= context_first) & (positions < context_last)
        # Index of each position's token in the question / the whole context.
        question_token = tf.clip_by_value(positions - 1, 0, tf.shape(question_ids)[1] - 1)
        context_token = positions - context_first + w_start[:, tf.newaxis]
        context_token_safe = tf.clip_by_value(context_token, 0, tf.shape(context_ids)[1])

        def from_context(values, fill):
            values = tf.concat([values, tf.fill([tf.shape(values)[0], 1], fill)], axis=1)
            picked = tf.gather(per_window(values), context_token_safe, batch_dims=1)
            return tf.where(in_context, picked, fill)

        pad, cls, sep = self.tokenizer.pad_id, self.tokenizer.cls_id, self.tokenizer.sep_id
        token_ids = tf.where(positions == 0, cls, pad)
        token_ids = tf.where(
            in_question,
            tf.gather(per_window(question_ids), question_token, batch_dims=1),
            token_ids,
        )
        token_ids = tf.where(positions == context_first - 1, sep, token_ids)
        token_ids = tf.where(in_context, from_context(context_ids, pad), token_ids)
        token_ids = tf.where(positions == context_last, sep, token_ids)
        segment_ids = tf.where(in_context | (positions == context_last), 1, 0)
        padding_mask = tf.where(positions <= context_last, 1, 0)
        offset_starts = from_context(char_starts, NO_OFFSET)
        offset_ends = from_context(char_ends, NO_OFFSET)

        max_context = self._max_context(
            context_token, w_start, w_length, window_number, w_num_windows, w_stride,
            w_size, w_context_length,
        )
        features = {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
            "offset_starts": offset_starts,
            "offset_ends": offset_ends,
            "max_context": tf.where(in_context & max_context, 1, 0),
        }
        features = {k: tf.ensure_shape(tf.cast(v, tf.int32), [None, length])
                    for k, v in features.items()}
        features["example_index"] = example_index
        features["context"] = per_window(context)
        if "answer_start" not in batch:
            return features, None, None

        targets = self._targets(
            batch, char_starts, char_ends, context_lengths, example_index, w_start,
            w_length, w_question_length,
        )
        return features, targets, None

    def _max_context(self, token, start, size, number, count, stride, window_size,
                     context_length):
        """Whether each position's token has its most context in this window.

        The reference scores a token in a window by `min(left, right) + 0.01 *
        window_length` and keeps the first window with the best score; only windows
        at most `ceil(window / doc_stride)` away can share a token.
        """
        start, size, number, count, stride, window_size, context_length = (
            t[:, tf.newaxis]
            for t in (start, size, number, count, stride, window_size, context_length)
        )

        def score(first, width):
            return _CONTEXT_SCALE * tf.minimum(token - first, first + width - 1 - token) + width

        own = score(start, size)
        best = tf.ones_like(token, dtype=tf.bool)
        reach = -(-(self.sequence_length - 3) // self.doc_stride)
        for shift in range(-reach, reach + 1):
            if shift == 0:
                continue
            other = number + shift
            other_start = other * stride
            other_size = tf.minimum(context_length - other_start, window_size)
            shares = (
                (other >= 0) & (other < count)
                & (token >= other_start) & (token < other_start + other_size)
            )
            theirs = score(other_start, other_size)
            beaten = theirs >= own if shift < 0 else theirs > own
            best = best & ~(shares & beaten)
        return best

    def _targets(self, batch, char_starts, char_ends, context_lengths, example_index,
                 w_start, w_length, w_question_length):
        answer_start = tf.cast(tf.reshape(batch["answer_start"], [-1]), tf.int32)
        answer_text = tf.reshape(batch["answer_text"], [-1])
        answer_end = answer_start + tf.strings.length(answer_text, unit="UTF8_CHAR")
        tokens = tf.range(tf.shape(char_starts)[1])[tf.newaxis, :]
        real = tokens < context_lengths[:, tf.newaxis]
        # First token ending after the answer start; last token starting before its end.
        first = tf.reduce_sum(
            tf.where(real & (char_ends <= answer_start[:, tf.newaxis]), 1, 0), axis=1
        )
        last = tf.reduce_sum(
            tf.where(real & (char_starts < answer_end[:, tf.newaxis]), 1, 0), axis=1
        ) - 1
        answerable = (answer_start >= 0) & (answer_end > answer_start) & (first <= last)
        first = tf.gather(first, example_index) - w_start
        last = tf.gather(last, example_index) - w_start
        inside = tf.gather(answerable, example_index) & (first >= 0) & (last < w_length)
        offset = w_question_length + 2
        start_position = tf.where(inside, first + offset, 0)
        end_position = tf.where(inside, last + offset, 0)
        return tf.stack([start_position, end_position], axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.layers.serialize(self.tokenizer),
                "sequence_length": self.sequence_length,
                "max_query_length": self.max_query_length,
                "doc_stride": self.doc_stride,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizer"] = keras.layers.deserialize(config["tokenizer"])
        return cls(**config)
