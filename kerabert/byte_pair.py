"""In-graph byte-level BPE (RoBERTa's tokenizer), with the byte offsets of every piece.

`BytePairTokenizer` reads a Hugging Face `tokenizer.json` of type `BPE` with the
`ByteLevel` pre-tokenizer. The splitting into words and the merges are keras-hub's
`BytePairTokenizer` (TensorFlow ops); kerabert adds what its heads need on top: each
piece's byte offsets in the original text (a word's pieces spell its bytes, one byte per
character of the byte-level alphabet), the pair layout of the post-processor
(`<s> a </s></s> b </s>`), and words given one by one (NER) tokenized with a leading
space, as transformers does for `is_split_into_words` input.

Example:
```python
tokenizer = BytePairTokenizer.from_tokenizer_json("roberta-folder/tokenizer.json")
ids, starts, ends = tokenizer.tokenize_with_offsets(["A fine film."])
```
"""

from __future__ import annotations

import json
import os

import keras
import keras_hub
import tensorflow as tf

from kerabert import compat
from kerabert.tokenizer import OffsetTokenizer, skip_leading_space
from kerabert.validation import CheckpointError

ASSET = "byte_pair.json"
SPACE = "\u0120"  # "Ġ": the space byte in the byte-level alphabet


@keras.saving.register_keras_serializable(package="kerabert")
class BytePairTokenizer(OffsetTokenizer, keras.layers.Layer):
    """Raw strings to byte-level BPE ids, in the TensorFlow graph.

    Args:
        vocabulary: `{token: id}` (a `BPE` `tokenizer.json`'s `model.vocab`).
        merges: the merge rules, `["a b", ...]`, in rank order.
        add_prefix_space: tokenize a text as if it began with a space (the
            `ByteLevel` pre-tokenizer's option; RoBERTa's is off).
        cls_token, sep_token, pad_token, unknown_token, mask_token: special tokens.
        separators_between: separators between the two texts of a pair.
        pair_segment_id: the segment id of the second text.

    Example:
    ```python
    tokenizer = BytePairTokenizer.from_tokenizer_json("roberta-folder/tokenizer.json")
    features = tokenizer.pack([tokenizer(["A fine film."])], sequence_length=16)
    ```
    """

    def __init__(self, vocabulary=None, merges=None, add_prefix_space=False, cls_token="<s>",
                 sep_token="</s>", pad_token="<pad>", unknown_token="<unk>",
                 mask_token="<mask>", separators_between=2, pair_segment_id=0, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.add_prefix_space = bool(add_prefix_space)
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.unknown_token = unknown_token
        self.mask_token = mask_token
        self.separators_between = int(separators_between)
        self.pair_segment_id = int(pair_segment_id)
        self.lowercase = False
        self.vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, merges)

    @classmethod
    def from_tokenizer_json(cls, path, **overrides):
        """A tokenizer from a byte-level `BPE` `tokenizer.json`; errors name the field."""
        return cls(**settings_from_tokenizer_json(path), **overrides)

    def set_vocabulary(self, vocabulary, merges):
        by_id = sorted(vocabulary.items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise ValueError(f"the vocabulary ids are not 0..{len(by_id) - 1}")
        self.vocabulary = [token for token, _ in by_id]
        self._index = dict(vocabulary)
        self.merges = list(merges)
        for role in ("cls_token", "sep_token", "pad_token"):
            if getattr(self, role) not in self._index:
                raise ValueError(f"the vocabulary has no {role} {getattr(self, role)!r}")
        self._specials = {self.cls_token, self.sep_token, self.pad_token, self.mask_token,
                          self.unknown_token}
        self._hub = keras_hub.tokenizers.BytePairTokenizer(
            vocabulary=dict(vocabulary), merges=self.merges, dtype="int32")
        self._lengths = tf.constant([len(token) for token in self.vocabulary], tf.int32)
        self.built = True  # no weights; keras-hub's merge layer inside has none either

    @property
    def unknown_id(self):
        return self.token_to_id(self.unknown_token)

    def continuation_flags(self):
        """Per id, whether the piece continues a word (it does not start with `Ġ`)."""
        return [not token.startswith(SPACE) and token not in self._specials
                for token in self.vocabulary]

    @property
    def special_ids(self):
        return sorted(self._index[t] for t in self._specials if t in self._index)

    # -- tokenization ----------------------------------------------------------------------
    def tokenize_with_offsets(self, strings):
        """Ids with the byte offsets `[start, end)` of each piece in its original string.

        Words (`[batch, (words)]`, ragged or dense) are tokenized one by one with a
        leading space, as a word inside a sentence is.
        """
        if isinstance(strings, tf.RaggedTensor):
            return tuple(strings.with_flat_values(t) for t in
                         self._tokenize(strings.flat_values, prefix_space=True))
        strings = tf.convert_to_tensor(strings, tf.string)
        if strings.shape.rank == 0:
            return tuple(t[0] for t in self._tokenize(strings[tf.newaxis],
                                                      self.add_prefix_space))
        if strings.shape.rank == 2:
            width = tf.shape(strings, out_type=tf.int64)[1]
            return tuple(tf.RaggedTensor.from_uniform_row_length(t, width) for t in
                         self._tokenize(tf.reshape(strings, [-1]), prefix_space=True))
        if strings.shape.rank != 1:
            raise ValueError(f"strings of rank {strings.shape.rank}: give a scalar, a "
                             "batch [batch] or words [batch, words]")
        return self._tokenize(strings, self.add_prefix_space)

    def _tokenize(self, strings, prefix_space):
        text = tf.strings.join([" ", strings]) if prefix_space else strings
        words = compat.byte_pair_words(text)  # [batch, (words)], spelling `text`
        word_bytes = tf.strings.length(words.flat_values)
        word_start = tf.cumsum(word_bytes, exclusive=True) - tf.gather(
            tf.cumsum(word_bytes, exclusive=True),
            tf.gather(words.row_starts(), words.value_rowids()))
        pieces = compat.byte_pair_merge(self._hub, words.flat_values)  # [words, (pieces)]
        piece_bytes = tf.gather(self._lengths, pieces.flat_values)
        within = tf.cumsum(piece_bytes, exclusive=True) - tf.gather(
            tf.cumsum(piece_bytes, exclusive=True),
            tf.gather(pieces.row_starts(), pieces.value_rowids()))
        raw_starts = tf.gather(word_start, pieces.value_rowids()) + within
        shift = 1 if prefix_space else 0  # the added space is not in the original text
        starts = tf.maximum(raw_starts - shift, 0)
        ends = tf.maximum(raw_starts + piece_bytes - shift, 0)
        rows = tf.gather(words.value_rowids(), pieces.value_rowids())
        splits = tf.math.bincount(tf.cast(rows, tf.int32), minlength=tf.size(strings),
                                  maxlength=tf.size(strings), dtype=tf.int64)
        ids = tf.RaggedTensor.from_row_lengths(pieces.flat_values, splits)
        starts, ends = _snap_to_characters(strings, ids.with_flat_values(starts),
                                           ids.with_flat_values(ends))
        # Hugging Face's `trim_offsets` drops the spaces a piece starts with (not tabs).
        return (ids,) + skip_leading_space(strings, starts, ends, space=" ")

    def detokenize(self, ids):
        """Ids -> text (for display and debugging)."""
        return self._hub.detokenize(ids)

    # -- saving ----------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary": None,  # an asset file, as keras-hub's tokenizers do
            "merges": None,
            "add_prefix_space": self.add_prefix_space,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "unknown_token": self.unknown_token,
            "mask_token": self.mask_token,
            "separators_between": self.separators_between,
            "pair_segment_id": self.pair_segment_id,
        })
        return config

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, ASSET), "w", encoding="utf-8") as f:
            json.dump({"vocabulary": self._index, "merges": self.merges}, f)

    def load_assets(self, dir_path):
        with open(os.path.join(dir_path, ASSET), encoding="utf-8") as f:
            assets = json.load(f)
        self.set_vocabulary(assets["vocabulary"], assets["merges"])


def _snap_to_characters(strings, starts, ends):
    """Byte offsets widened to whole UTF-8 characters: a piece holding some bytes of "é"
    covers "é", as Hugging Face reports it."""
    _, char_starts = tf.strings.unicode_split_with_offsets(strings, "UTF-8")
    length = tf.cast(tf.strings.length(strings), tf.int64)[:, tf.newaxis]
    bounds = tf.concat([char_starts, length], axis=1)  # every character boundary
    big = tf.reduce_max(length) + 1
    dense = bounds.to_tensor(default_value=big)

    def char_of(offsets):  # index of the character holding each byte offset
        flat = tf.cast(offsets, tf.int64).to_tensor(default_value=0)
        return tf.searchsorted(dense, flat, side="right", out_type=tf.int64) - 1

    start_char = char_of(starts)
    end_char = char_of(ends - 1) + 1
    snapped_start = tf.gather(dense, tf.maximum(start_char, 0), batch_dims=1)
    snapped_end = tf.gather(dense, tf.minimum(end_char, tf.shape(dense, tf.int64)[1] - 1),
                            batch_dims=1)
    mask = tf.sequence_mask(starts.row_lengths(), tf.shape(start_char)[1])
    pick = lambda values: starts.with_flat_values(  # noqa: E731
        tf.cast(tf.boolean_mask(values, mask), tf.int32))
    return pick(snapped_start), tf.maximum(pick(snapped_end), pick(snapped_start))


def settings_from_tokenizer_json(path):
    """`BytePairTokenizer` arguments from a byte-level `BPE` `tokenizer.json`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise CheckpointError(f"{path}: model.type {model.get('type')!r} is not BPE")
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        raise CheckpointError(f"{path}: pre_tokenizer {pre.get('type')!r} is not supported "
                              "(only ByteLevel with its regex, as RoBERTa's)")
    if data.get("normalizer") is not None:
        raise CheckpointError(f"{path}: a normalizer before byte-level BPE is not supported")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    post = data.get("post_processor") or {}
    if post.get("type") != "RobertaProcessing":
        raise CheckpointError(f"{path}: post_processor {post.get('type')!r} is not supported "
                              "(only RobertaProcessing)")
    vocabulary = dict(model.get("vocab") or {})
    for token in data.get("added_tokens") or []:
        vocabulary.setdefault(token["content"], token["id"])
    names = set(vocabulary)
    return dict(vocabulary=vocabulary, merges=merges,
                add_prefix_space=bool(pre.get("add_prefix_space", False)),
                cls_token=post["cls"][0], sep_token=post["sep"][0],
                pad_token="<pad>" if "<pad>" in names else post["sep"][0],
                unknown_token="<unk>", mask_token="<mask>")
