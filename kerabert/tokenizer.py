"""In-graph WordPiece tokenization and dense packing of BERT inputs.

`BertTokenizer` wraps tensorflow-text's `FastBertTokenizer`: BERT pre-tokenization,
optional lower-casing with NFD accent stripping (as Hugging Face's `BertNormalizer`
does for uncased checkpoints) and WordPiece, all as TensorFlow ops that also have
TFLite kernels. `pack_inputs` turns one or two ragged token segments into
`[CLS] a [SEP] (b [SEP])` with dense ops only (`gather(batch_dims=1)`, `tf.where`),
which TFLite converts without Select-TF ops.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
import tensorflow_text as tf_text

VOCABULARY_ASSET = "vocabulary.txt"


class TokenIds:
    """Ids of a tokenizer's vocabulary and special tokens, from its `vocabulary` (a list,
    index = id), `_index` (token -> first id) and `cls_token`/`sep_token`/`pad_token`/
    `mask_token` names."""

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def token_to_id(self, token):
        """The id of `token`; a `KeyError` names a token that is not in the vocabulary."""
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary") from None

    def id_to_token(self, token_id):
        return self.vocabulary[token_id]

    @property
    def cls_id(self):
        return self.token_to_id(self.cls_token)

    @property
    def sep_id(self):
        return self.token_to_id(self.sep_token)

    @property
    def pad_id(self):
        return self.token_to_id(self.pad_token)

    @property
    def mask_id(self):
        return self.token_to_id(self.mask_token)


class OffsetTokenizer(TokenIds):
    """What the byte-level BPE and SentencePiece tokenizers share: strings in, ids from
    their `tokenize_with_offsets`, and packing with their `separators_between` and
    `pair_segment_id` (the checkpoint's pair layout)."""

    def __call__(self, strings, **kwargs):
        if not isinstance(strings, (tf.Tensor, tf.RaggedTensor)):
            strings = tf.convert_to_tensor(strings, dtype=tf.string)
        return super().__call__(strings, **kwargs)

    def call(self, strings):
        """Strings -> int32 ragged ids with one more (ragged) dimension."""
        return self.tokenize_with_offsets(strings)[0]

    def pack(self, segments, sequence_length, **options):
        """One or two ragged id segments in the checkpoint's layout (`<s> a </s></s> b
        </s>` or `[CLS] a [SEP] b [SEP]`): `token_ids`, `segment_ids`, `padding_mask`."""
        features = pack_inputs(segments, sequence_length, cls_id=self.cls_id,
                               sep_id=self.sep_id, pad_id=self.pad_id,
                               separators_between=self.separators_between,
                               pair_segment_id=self.pair_segment_id, **options)
        del features["segment_lengths"]
        return features


def skip_leading_space(strings, starts, ends, space=r"\s"):
    """Offsets without the whitespace a SentencePiece or byte-level BPE piece starts with,
    as Hugging Face reports them (a lone `▁` piece becomes empty at its word's start);
    `space`: the bytes skipped (a regex of one byte)."""
    data = tf.strings.bytes_split(strings)
    data = tf.concat([data, tf.fill([data.nrows(), 1], "")], axis=1)
    space = tf.strings.regex_full_match(data.flat_values, space)
    base = tf.cast(tf.gather(data.row_starts(), starts.value_rowids()), tf.int32)
    flat_ends = ends.flat_values

    def at_space(flat):
        return tf.gather(space, base + flat) & (flat < flat_ends)

    flat, = tf.while_loop(lambda flat: tf.reduce_any(at_space(flat)),
                          lambda flat: (tf.where(at_space(flat), flat + 1, flat),),
                          (starts.flat_values,))
    starts = starts.with_flat_values(flat)
    return starts, tf.maximum(ends, starts)



@keras.saving.register_keras_serializable(package="kerabert")
class BertTokenizer(TokenIds, keras.layers.Layer):
    """Raw strings to WordPiece ids, in the TensorFlow graph.

    Args:
        vocabulary: a list of word pieces (index = id) or the path of a `vocab.txt`.
        lowercase: lower-case and strip accents before WordPiece (uncased checkpoints).
        unknown_token, cls_token, sep_token, pad_token, mask_token: special tokens;
            each must be in the vocabulary (`mask_token` only for masked-LM).
        max_bytes_per_word: longer words become `unknown_token`, as in BERT.

    Example:
    ```python
    tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"],
                              lowercase=True)
    tokenizer(["A film"])  # <tf.RaggedTensor [[5, 6]]>
    ```
    """

    def __init__(
        self,
        vocabulary=None,
        lowercase=True,
        unknown_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        max_bytes_per_word=100,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.lowercase = lowercase
        self.unknown_token = unknown_token
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.mask_token = mask_token
        self.max_bytes_per_word = max_bytes_per_word
        self.vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    def set_vocabulary(self, vocabulary):
        """Set the word pieces (a list, or the path of a one-token-per-line file)."""
        if isinstance(vocabulary, (str, os.PathLike)):
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line.rstrip("\r\n") for line in f]
            while vocabulary and vocabulary[-1] == "":
                vocabulary.pop()
        vocabulary = [str(token) for token in vocabulary]
        index = {}
        for i, token in enumerate(vocabulary):
            index.setdefault(token, i)
        for role in ("unknown_token", "cls_token", "sep_token", "pad_token"):
            if getattr(self, role) not in index:
                raise ValueError(f"vocabulary has no {role} {getattr(self, role)!r}")
        self.vocabulary = vocabulary
        self._index = index
        self._fast = tf_text.FastBertTokenizer(
            vocab=vocabulary,
            token_out_type=tf.int64,
            unknown_token=self.unknown_token,
            max_bytes_per_word=self.max_bytes_per_word,
            lower_case_nfd_strip_accents=self.lowercase,
        )

    # -- ids -------------------------------------------------------------------------------
    @property
    def unknown_id(self):
        return self.token_to_id(self.unknown_token)

    def continuation_flags(self):
        """Per id, whether the word piece continues a word (`##...`)."""
        return [token.startswith("##") for token in self.vocabulary]

    @property
    def special_ids(self):
        """Ids of every `[...]` special token present in the vocabulary."""
        return sorted(
            i
            for token, i in self._index.items()
            if token.startswith("[") and token.endswith("]") and len(token) > 2
        )

    # -- tokenization ----------------------------------------------------------------------
    def __call__(self, strings, **kwargs):
        if not isinstance(strings, (tf.Tensor, tf.RaggedTensor)):
            strings = tf.convert_to_tensor(strings, dtype=tf.string)
        return super().__call__(strings, **kwargs)

    def call(self, strings):
        """Strings of any shape -> int32 ragged ids with one more (ragged) dimension."""
        return tf.cast(self._fast.tokenize(strings), tf.int32)

    def tokenize_with_offsets(self, strings):
        """Ids with the byte offsets `[start, end)` of each word piece in its string."""
        # FastBertTokenizer.tokenize_with_offsets maps offsets back through normalization
        # with a ragged batch gather, which lowers to RaggedRange (no TFLite kernel). The
        # same mapping on flat values needs only a dense gather.
        normalized, mapping = self._fast._fast_bert_normalizer.normalize_with_offsets(strings)
        ids, starts, ends = self._fast._fast_wordpiece_tokenizer.tokenize_with_offsets(normalized)
        if not isinstance(starts, tf.RaggedTensor):  # a scalar string
            ids, starts, ends = self._fast.tokenize_with_offsets(strings)
            return tf.cast(ids, tf.int32), tf.cast(starts, tf.int32), tf.cast(ends, tf.int32)
        string_of_piece = tf.RaggedTensor.from_row_splits(
            starts.flat_values, starts.nested_row_splits[-1]
        ).value_rowids()
        base = tf.gather(mapping.nested_row_splits[-1], string_of_piece)

        def original(offsets):
            return starts.with_flat_values(
                tf.cast(tf.gather(mapping.flat_values, base + offsets.flat_values), tf.int32)
            )

        return tf.cast(ids, tf.int32), original(starts), original(ends)

    def pack(self, segments, sequence_length, **options):
        """`[CLS] a [SEP] (b [SEP])` from one or two ragged id segments.

        `pack_inputs` with this vocabulary's special tokens, returning the model's
        `token_ids`, `segment_ids` and `padding_mask` (plus any `aligned` values).

        Example:
        ```python
        features = tokenizer.pack([tokenizer(["a film"])], sequence_length=16)
        ```
        """
        features = pack_inputs(
            segments,
            sequence_length,
            cls_id=self.cls_id,
            sep_id=self.sep_id,
            pad_id=self.pad_id,
            **options,
        )
        del features["segment_lengths"]
        return features

    def detokenize(self, ids):
        """Ids -> text with word pieces joined (for display and debugging)."""
        tokens = tf.gather(tf.constant(self.vocabulary), ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")

    # -- saving ----------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # The vocabulary travels as an asset file, as keras-hub's tokenizers do.
                "vocabulary": None,
                "lowercase": self.lowercase,
                "unknown_token": self.unknown_token,
                "cls_token": self.cls_token,
                "sep_token": self.sep_token,
                "pad_token": self.pad_token,
                "mask_token": self.mask_token,
                "max_bytes_per_word": self.max_bytes_per_word,
            }
        )
        return config

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, VOCABULARY_ASSET), "w", encoding="utf-8") as f:
            f.write("\n".join(self.vocabulary) + "\n")

    def load_assets(self, dir_path):
        self.set_vocabulary(os.path.join(dir_path, VOCABULARY_ASSET))


def pack_inputs(
    segments,
    sequence_length,
    cls_id,
    sep_id,
    pad_id=0,
    aligned=None,
    fill_value=-1,
    pad_to_sequence_length=True,
    separators_between=1,
    pair_segment_id=1,
):
    """Pack one or two ragged segments into BERT's dense inputs.

    Truncation keeps `[CLS] a [SEP] b [SEP]` within `sequence_length`: a single segment
    is cut at the end; for a pair, the longer segment gives way first and a segment
    shorter than half the budget is never cut. Only dense ops are used, so the result
    converts to TFLite builtins.

    Args:
        segments: a list of one or two int `tf.RaggedTensor`s of shape `[batch, None]`.
        sequence_length: the maximum packed length.
        cls_id, sep_id, pad_id: special token ids.
        aligned: optional `{name: [ragged per segment]}` of values aligned with the
            segments' tokens (word indices, character offsets, labels); each is packed
            to the same positions, with `fill_value` on special and padding positions.
        fill_value: the value of `aligned` outputs outside the segments.
        pad_to_sequence_length: pad to `sequence_length` (static shape) rather than to
            the longest packed row of the batch.
        separators_between: separator tokens between the two segments of a pair (2
            for RoBERTa-style `<s> a </s></s> b </s>`).
        pair_segment_id: the segment id of the second segment and its separator (0 for
            models without segment embeddings).

    Returns:
        A dict with int32 `token_ids`, `segment_ids`, `padding_mask` of shape
        `[batch, length]`, `segment_lengths` (`[batch, n_segments]`, tokens kept per
        segment, after truncation) and one entry per `aligned` name.
    """
    if len(segments) not in (1, 2):
        raise ValueError(f"pack_inputs takes one or two segments, got {len(segments)}")
    aligned = aligned or {}
    lengths = [tf.cast(s.row_lengths(), tf.int32) for s in segments]
    separators = 1 if len(segments) == 1 else separators_between + 1
    budget = sequence_length - 1 - separators
    if len(segments) == 1:
        kept = [tf.minimum(lengths[0], budget)]
    else:
        first = tf.minimum(lengths[0], tf.maximum(budget - lengths[1], budget - budget // 2))
        kept = [first, tf.minimum(lengths[1], budget - first)]
    total = tf.add_n(kept) + 1 + separators
    width = sequence_length if pad_to_sequence_length else tf.reduce_max(total)
    batch = tf.shape(kept[0])[0]
    positions = tf.broadcast_to(tf.range(width)[tf.newaxis, :], [batch, width])

    token_ids = tf.where(positions == 0, cls_id, pad_id)
    segment_ids = tf.zeros_like(token_ids)
    packed_aligned = {name: tf.fill(tf.shape(token_ids), fill_value) for name in aligned}
    start = tf.ones_like(kept[0])[:, tf.newaxis]
    for index, (segment, length) in enumerate(zip(segments, kept)):
        length = length[:, tf.newaxis]
        inside = (positions >= start) & (positions < start + length)
        source = tf.maximum(positions - start, 0)

        def take(ragged, default):
            dense = ragged.to_tensor(default_value=default)
            # A padding column keeps the gather valid when every row is empty.
            dense = tf.concat([dense, tf.fill([tf.shape(dense)[0], 1], default)], axis=1)
            clipped = tf.minimum(source, tf.shape(dense)[1] - 1)
            return tf.gather(dense, clipped, batch_dims=1)

        token_ids = tf.where(inside, take(tf.cast(segment, tf.int32), pad_id), token_ids)
        ends = 1 if index == len(segments) - 1 else separators_between
        after = (positions >= start + length) & (positions < start + length + ends)
        token_ids = tf.where(after, sep_id, token_ids)
        if index == 1 and pair_segment_id:
            segment_ids = tf.where(inside | after, pair_segment_id, segment_ids)
        for name, values in aligned.items():
            packed_aligned[name] = tf.where(
                inside, take(tf.cast(values[index], tf.int32), fill_value), packed_aligned[name]
            )
        start = start + length + ends
    padding_mask = tf.where(positions < total[:, tf.newaxis], 1, 0)
    outputs = {
        "token_ids": tf.cast(token_ids, tf.int32),
        "segment_ids": tf.cast(segment_ids, tf.int32),
        "padding_mask": tf.cast(padding_mask, tf.int32),
        "segment_lengths": tf.stack(kept, axis=1),
    }
    outputs.update(packed_aligned)
    return outputs
