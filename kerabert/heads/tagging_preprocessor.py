"""In-graph preprocessing of the `ner` head: words or raw text -> word-aligned windows.

Two inputs share one path:

- pre-split words (`text` a ragged `[batch, words]` string tensor, as CoNLL gives):
  each word is tokenized on its own (`[batch, words, pieces]`), so a word such as
  `U.S.` keeps one tag however BERT splits it; a word that yields no piece at all
  becomes `[UNK]` so that it keeps its tag too;
- raw text (`text` a `[batch]` string tensor): split BERT-style (whitespace and
  punctuation) by the WordPiece tokenizer itself; a piece without the `##` prefix starts
  a word. Character offsets of each word in the original string come from the
  tokenizer's byte offsets, converted with the string's own bytes (`ByteSplitter`), so
  they are right for any UTF-8 text.

Sentences longer than `sequence_length - 2` pieces are cut into windows of that many
pieces every `stride` pieces. Each word is labelled (and predicted) in exactly one
window, the one where its first piece has the most context on both sides, so windows
can be stitched back without truncating anything.

Everything after tokenization is dense (`gather(batch_dims=1)`, `tf.where`,
`cumsum`, segment max), as TFLite needs.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from kerabert.heads.word_shape import PAD, case_classes


class TaggingPreprocessor(keras.layers.Layer):
    """Raw `text` (words or strings) and optional `tags` -> BERT windows and targets.

    Features (per window row; `[rows, sequence_length]` int32 unless noted):
    `token_ids`, `segment_ids`, `padding_mask`; `word_index` (the word of each piece
    within its example, -1 on special and padding positions); `label_mask` (1 where
    this row predicts a word: its first piece, in the window that owns it);
    `word_start`/`word_end` (character offsets of each piece's word in the raw
    string; -1 for pre-split words); `case_ids` (with `case_ids=True`: the case class of
    each piece's word in the original text, `kerabert.heads.word_shape`; 0 on special
    and padding positions); `example_index` (`[rows]`, the example of each row within
    the batch).

    Targets: the label id on labelled positions and -1 elsewhere; sample weights are
    1.0 on labelled positions and 0.0 elsewhere.

    Args:
        tokenizer: a `kerabert.tokenizer.BertTokenizer`.
        sequence_length: the packed length of a window.
        labels: tag names (index = label id); needed only for batches with `tags`.
        continuation_labels: for each label id, the label of a word's other pieces when
            every piece is labelled; None labels only each word's first piece.
        stride: pieces between the starts of consecutive windows (default: half a
            window).
        case_ids: also emit `case_ids`.

    Example:
    ```python
    pre = TaggingPreprocessor(tokenizer, 32)
    features, _, _ = pre({"text": tf.ragged.constant([["John", "lives", "in", "Paris"]])})
    features["case_ids"][0, :6]  # [0, 2, 1, 1, 2, 0]
    ```
    """

    def __init__(self, tokenizer, sequence_length, labels=None, continuation_labels=None,
                 stride=None, case_ids=True, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.budget = self.sequence_length - 2
        if self.budget < 1:
            raise ValueError(f"sequence_length {sequence_length} leaves no room for words")
        self.stride = int(stride) if stride else max(self.budget // 2, 1)
        if not 1 <= self.stride <= self.budget:
            raise ValueError(f"stride must be within 1..{self.budget}, got {stride}")
        self.labels = list(labels) if labels else None
        self.continuation_labels = continuation_labels
        self.case_ids = bool(case_ids)
        continuation = [int(flag) for flag in tokenizer.continuation_flags()]
        self._is_continuation = tf.constant(continuation, tf.int32)
        self._bytes = tf_text.ByteSplitter()
        if self.labels:
            # Compared rather than hashed: no lookup-table resource to initialize in
            # exports (TFLite has no HashTableV2 kernel), and label sets are small.
            self._names = tf.constant(self.labels)
            self._continuation = tf.constant(
                continuation_labels if continuation_labels is not None
                else [-1] * len(self.labels), tf.int32)
        self.built = True  # no weights; the lookup tables are built above

    # -- words -> pieces -------------------------------------------------------------------
    def _from_words(self, words, tags):
        """Pre-split words -> dense per-piece arrays `[batch, pieces]`."""
        pieces = self.tokenizer(words)  # [batch, words, pieces]
        per_word = pieces.values  # [all words, pieces]
        counts = per_word.row_lengths()
        # A word with no piece (e.g. only control characters) becomes [UNK].
        unknown = tf.RaggedTensor.from_tensor(
            tf.fill([tf.shape(counts)[0], 1], self.tokenizer.unknown_id))
        padded = tf.concat([per_word, unknown], axis=1)
        keep = tf.ragged.range(padded.row_lengths()) < tf.maximum(counts, 1)[:, tf.newaxis]
        per_word = tf.ragged.boolean_mask(padded, keep)
        counts = per_word.row_lengths()
        pieces = words.with_flat_values(per_word)
        word_number = tf.ragged.range(words.row_lengths()).flat_values
        first = tf.cast(tf.ragged.range(counts).flat_values == 0, tf.int32)
        flat = {
            "ids": per_word.flat_values,
            "word_index": tf.repeat(tf.cast(word_number, tf.int32), counts),
            "first": first,
        }
        if self.case_ids:
            # Each word's class from its own bytes, repeated over its pieces.
            flat["case"] = tf.repeat(self._word_cases(words.flat_values), counts)
        if tags is not None:
            label = tf.repeat(self._lookup(tags).flat_values, counts)
            continuation = tf.gather(self._continuation, tf.maximum(label, 0))
            flat["label"] = tf.where(first > 0, label, continuation)
        splits = pieces.merge_dims(1, 2).row_splits
        dense = {
            name: tf.RaggedTensor.from_row_splits(values, splits).to_tensor(
                default_value=self._FILL.get(name, -1))
            for name, values in flat.items()
        }
        dense["word_start"] = tf.fill(tf.shape(dense["ids"]), -1)
        dense["word_end"] = dense["word_start"]
        lengths = tf.cast(splits[1:] - splits[:-1], tf.int32)
        return dense, lengths

    # Padding values of the per-piece arrays (-1 for the others).
    _FILL = {"ids": 0, "case": PAD}

    def _word_cases(self, words):
        """`[n]` words (strings) -> their case classes `[n]`."""
        data = tf.cast(self._bytes.split(words), tf.int32)  # int32: TFLite densifies no uint8
        lengths = tf.cast(data.row_lengths(), tf.int32)[:, tf.newaxis]
        classes = case_classes(data.to_tensor(default_value=-1), tf.zeros_like(lengths),
                               lengths)
        return classes[:, 0]

    def _from_text(self, text):
        """Raw strings -> dense per-piece arrays, with character offsets of words."""
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(text)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        ids = ids.to_tensor(default_value=0)
        width = tf.shape(ids)[1]
        positions = tf.range(width)[tf.newaxis, :]
        valid = positions < lengths[:, tf.newaxis]
        # A text's first piece starts a word even without a word-start marker (RoBERTa
        # spells a text's first word without its leading "Ġ").
        first = tf.where(valid & ((tf.gather(self._is_continuation, ids) == 0)
                                  | (positions == 0)), 1, 0)
        word_index = tf.where(valid, tf.cumsum(first, axis=1) - 1, -1)
        # Byte offsets -> character offsets: count the UTF-8 lead bytes before each offset.
        raw = tf.cast(self._bytes.split(text), tf.int32).to_tensor(default_value=0)
        lead = tf.where((raw >= 128) & (raw < 192), 0, 1)
        chars_before = tf.concat(
            [tf.zeros_like(lead[:, :1]), tf.cumsum(lead, axis=1)], axis=1)
        char_start = tf.gather(chars_before, starts.to_tensor(default_value=0), batch_dims=1)
        char_end = tf.gather(chars_before, ends.to_tensor(default_value=0), batch_dims=1)
        # A word ends where its last piece ends: the maximum over the word's pieces.
        batch = tf.shape(ids)[0]
        segments = tf.where(valid, tf.range(batch)[:, tf.newaxis] * width + word_index,
                            batch * width)
        word_end = tf.math.unsorted_segment_max(char_end, segments, batch * width + 1)
        dense = {
            "ids": ids,
            "word_index": word_index,
            "first": first,
            "word_start": tf.where(valid, char_start, -1),
            "word_end": tf.where(valid, tf.gather(word_end, segments), -1),
        }
        if self.case_ids:
            # The word's bytes: from its first piece's start to its last piece's end.
            slots = batch * width + 1
            byte_start = tf.math.unsorted_segment_min(
                tf.cast(starts.to_tensor(default_value=0), tf.int32), segments, slots)
            byte_end = tf.math.unsorted_segment_max(
                tf.cast(ends.to_tensor(default_value=0), tf.int32), segments, slots)
            classes = case_classes(raw, tf.gather(byte_start, segments),
                                   tf.gather(byte_end, segments))
            dense["case"] = tf.where(valid, classes, PAD)
        return dense, lengths

    def _lookup(self, tags):
        if not self.labels:
            raise ValueError("the head has no labels: call head.adapt(examples) first")
        flat = tags.flat_values
        same = tf.equal(flat[:, tf.newaxis], self._names[tf.newaxis, :])
        found = tf.reduce_any(same, axis=1)
        ids = tags.with_flat_values(
            tf.where(found, tf.argmax(tf.cast(same, tf.int32), axis=1, output_type=tf.int32), -1))
        check = tf.debugging.assert_non_negative(
            ids.flat_values, message=f"a tag outside the head's labels {self.labels}")
        with tf.control_dependencies([check]):
            return tf.identity(ids)

    # -- pieces -> windows -----------------------------------------------------------------
    def _windows(self, dense, lengths):
        budget, stride = self.budget, self.stride
        batch = tf.shape(lengths)[0]
        # Windows per example: at least one (an empty text still gets a row).
        extra = tf.maximum(lengths - budget, 0)
        counts = 1 + (extra + stride - 1) // stride
        example_index = tf.repeat(tf.range(batch), counts)
        window = tf.range(tf.shape(example_index)[0]) - tf.gather(
            tf.cumsum(counts, exclusive=True), example_index)
        start = window * stride
        length = tf.gather(lengths, example_index)
        offsets = tf.range(budget)[tf.newaxis, :]
        source = start[:, tf.newaxis] + offsets  # piece index in the example
        inside = source < length[:, tf.newaxis]

        # The window that owns a piece: the most context on its narrower side.
        most = tf.reduce_max(counts)
        candidates = tf.range(most)[tf.newaxis, tf.newaxis, :]
        c_start = candidates * stride
        c_end = tf.minimum(c_start + budget, length[:, tf.newaxis, tf.newaxis])
        p = source[:, :, tf.newaxis]
        context = tf.minimum(p - c_start, c_end - 1 - p)
        usable = (candidates < tf.gather(counts, example_index)[:, tf.newaxis, tf.newaxis]) & (
            context >= 0)
        context = tf.where(usable, context, -1)
        owner = tf.argmax(context, axis=-1, output_type=tf.int32)
        owned = inside & (owner == window[:, tf.newaxis])

        def take(values, fill):
            rows = tf.gather(values, example_index)
            rows = tf.concat([rows, tf.fill([tf.shape(rows)[0], 1], fill)], axis=1)
            picked = tf.gather(rows, tf.minimum(source, tf.shape(rows)[1] - 1), batch_dims=1)
            return tf.where(inside, picked, fill)

        pieces = {name: take(values, self._FILL.get(name, -1))
                  for name, values in dense.items()}
        count = tf.reduce_sum(tf.where(inside, 1, 0), axis=1)
        return pieces, owned, count, example_index

    def _pack(self, values, count, fill, special=None):
        """`[rows, budget]` -> `[rows, sequence_length]` with `[CLS] ... [SEP]` room."""
        rows = tf.shape(values)[0]
        column = tf.fill([rows, 1], fill)
        packed = tf.concat([column, values, column], axis=1)
        if special is not None:
            cls_id, sep_id = special
            positions = tf.range(self.sequence_length)[tf.newaxis, :]
            packed = tf.where(positions == 0, cls_id, packed)
            packed = tf.where(positions == count[:, tf.newaxis] + 1, sep_id, packed)
        packed.set_shape([None, self.sequence_length])
        return packed

    def call(self, batch):
        text = batch["text"]
        tags = batch.get("tags")
        if isinstance(text, tf.RaggedTensor):
            dense, lengths = self._from_words(text, tags)
        else:
            text = tf.convert_to_tensor(text)
            if text.shape.rank == 2:  # a dense [batch, words] tensor of pre-split words
                if tags is not None and not isinstance(tags, tf.RaggedTensor):
                    tags = tf.RaggedTensor.from_tensor(tags)
                dense, lengths = self._from_words(tf.RaggedTensor.from_tensor(text), tags)
            else:
                if tags is not None:
                    raise ValueError("tags need pre-split words: give text as word lists")
                dense, lengths = self._from_text(text)
        pieces, owned, count, example_index = self._windows(dense, lengths)
        positions = tf.range(self.sequence_length)[tf.newaxis, :]
        padding_mask = tf.where(positions < count[:, tf.newaxis] + 2, 1, 0)
        label_mask = tf.where(owned & (pieces["first"] > 0), 1, 0)
        features = {
            "token_ids": self._pack(pieces["ids"], count, self.tokenizer.pad_id,
                                    (self.tokenizer.cls_id, self.tokenizer.sep_id)),
            "segment_ids": tf.zeros_like(padding_mask),
            "padding_mask": padding_mask,
            "word_index": self._pack(pieces["word_index"], count, -1),
            "label_mask": self._pack(label_mask, count, 0),
            "word_start": self._pack(pieces["word_start"], count, -1),
            "word_end": self._pack(pieces["word_end"], count, -1),
            "example_index": example_index,
        }
        if self.case_ids:
            features["case_ids"] = self._pack(pieces["case"], count, PAD)
        if tags is None:
            return features, None, None
        labelled = owned & (pieces["label"] >= 0)
        targets = self._pack(tf.where(labelled, pieces["label"], -1), count, -1)
        weights = tf.cast(self._pack(tf.where(labelled, 1, 0), count, 0), tf.float32)
        return features, targets, weights
