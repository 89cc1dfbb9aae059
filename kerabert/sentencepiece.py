"""In-graph SentencePiece (Unigram) tokenization for ALBERT, XLM-RoBERTa and DeBERTa-v3.

`SentencePieceTokenizer` is built from a Hugging Face `tokenizer.json` (the only
tokenizer file transformers 5 writes): its Unigram pieces and scores, in the checkpoint's
id order, become a SentencePiece model that tensorflow-text runs in the graph, so the
ids are the checkpoint's own with no id remapping (XLM-R's fairseq offset and
DeBERTa's appended `[MASK]` included). The normalizer steps before the precompiled
character map (ALBERT's quote replacement, NFKD, accent stripping and lower-casing) run
per character, so every piece keeps the byte offsets of the original text, which the
tagging and span heads need; whitespace steps are SentencePiece's own.

Example:
```python
tokenizer = SentencePieceTokenizer.from_tokenizer_json("folder/tokenizer.json")
tokenizer(["A fine film."])
```
"""

from __future__ import annotations

import base64
import json
import os
import struct

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from kerabert.tokenizer import OffsetTokenizer, skip_leading_space
from kerabert.validation import CheckpointError

ASSET = "sentencepiece.json"

#: Normalizer steps applied per character (offsets are kept exactly).
CHARACTER_STEPS = ("NFC", "NFKC", "NFD", "NFKD", "StripAccents", "Lowercase", "Replace")
#: Whitespace steps: SentencePiece collapses, strips and escapes whitespace itself.
WHITESPACE_REPLACEMENTS = {r"\s{2,}|[\n\r\t]", " {2,}", r"\s+"}


@keras.saving.register_keras_serializable(package="kerabert")
class SentencePieceTokenizer(OffsetTokenizer, keras.layers.Layer):
    """Raw strings to SentencePiece ids, in the TensorFlow graph.

    Args:
        pieces: `[[piece, score], ...]` in id order (a Unigram `tokenizer.json`'s
            `model.vocab`).
        unknown_id: the id of the unknown piece.
        charsmap: the precompiled character map (base64), or `None`.
        steps: the per-character normalizer steps before the character map, as
            `tokenizer.json` writes them (`{"type": "Lowercase"}`, ...).
        cls_token, sep_token, pad_token, unknown_token, mask_token: special pieces.
        separators_between: separators between the two texts of a pair (2 for
            XLM-RoBERTa's `<s> a </s></s> b </s>`, 1 for `[CLS] a [SEP] b [SEP]`).
        pair_segment_id: the segment id of the second text (0 where the model has no
            segment embedding).

    Example:
    ```python
    tokenizer = SentencePieceTokenizer.from_tokenizer_json("folder/tokenizer.json")
    features = tokenizer.pack([tokenizer(["A fine film."])], sequence_length=16)
    ```
    """

    def __init__(self, pieces=None, unknown_id=0, charsmap=None, steps=(),
                 cls_token="<s>", sep_token="</s>", pad_token="<pad>", unknown_token="<unk>",
                 mask_token="<mask>", separators_between=1, pair_segment_id=1, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.unknown_id = int(unknown_id)
        self.charsmap = charsmap
        self.steps = [dict(step) for step in steps]
        for step in self.steps:
            _check_step(step, "steps")
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.unknown_token = unknown_token
        self.mask_token = mask_token
        self.separators_between = int(separators_between)
        self.pair_segment_id = int(pair_segment_id)
        self.lowercase = any(step["type"] == "Lowercase" for step in self.steps)
        self.vocabulary = None
        if pieces is not None:
            self.set_pieces(pieces)

    @classmethod
    def from_tokenizer_json(cls, path, **overrides):
        """A tokenizer from a Unigram `tokenizer.json`; errors name the file and field."""
        return cls(**settings_from_tokenizer_json(path), **overrides)

    def set_pieces(self, pieces):
        self.pieces = [[str(piece), float(score)] for piece, score in pieces]
        self.vocabulary = [piece for piece, _ in self.pieces]
        self._index = {}
        for i, token in enumerate(self.vocabulary):
            self._index.setdefault(token, i)
        for role in ("cls_token", "sep_token", "pad_token"):
            if getattr(self, role) not in self._index:
                raise ValueError(f"the pieces have no {role} {getattr(self, role)!r}")
        self._specials = {self.cls_token, self.sep_token, self.pad_token, self.mask_token}
        self._model = tf_text.SentencepieceTokenizer(
            model=model_proto(self.pieces, self.unknown_id, self.charsmap, self._specials),
            out_type=tf.int32)

    # -- ids -------------------------------------------------------------------------------
    def continuation_flags(self):
        """Per id, whether the piece continues a word (it does not start with `▁`)."""
        return [not piece.startswith("\u2581") and piece not in self._specials
                for piece in self.vocabulary]

    @property
    def special_ids(self):
        """Ids of the special pieces present in the vocabulary (never masked or scored)."""
        specials = self._specials | {self.vocabulary[self.unknown_id]}
        return sorted(self._index[token] for token in specials if token in self._index)

    # -- tokenization ----------------------------------------------------------------------
    def tokenize_with_offsets(self, strings):
        """Ids with the byte offsets `[start, end)` of each piece in its original string."""
        if isinstance(strings, tf.RaggedTensor):  # e.g. [batch, (words)]
            return tuple(strings.with_flat_values(t)
                         for t in self.tokenize_with_offsets(strings.flat_values))
        strings = tf.convert_to_tensor(strings, tf.string)
        if strings.shape.rank == 0:
            ids, starts, ends = self.tokenize_with_offsets(strings[tf.newaxis])
            return ids[0], starts[0], ends[0]
        if strings.shape.rank == 2:  # [batch, words]
            width = tf.shape(strings, out_type=tf.int64)[1]
            return tuple(tf.RaggedTensor.from_uniform_row_length(t, width)
                         for t in self.tokenize_with_offsets(tf.reshape(strings, [-1])))
        if strings.shape.rank != 1:
            raise ValueError(f"strings of rank {strings.shape.rank}: give a scalar, a "
                             "batch [batch] or words [batch, words]")
        if not self.steps:
            ids, starts, ends = self._model.tokenize_with_offsets(strings)
            return (ids,) + skip_leading_space(strings, tf.cast(starts, tf.int32),
                                               tf.cast(ends, tf.int32))
        normalized, char_starts, char_ends, byte_char = _normalize(strings, self.steps)
        ids, starts, ends = self._model.tokenize_with_offsets(normalized)
        starts, ends = tf.cast(starts, tf.int32), tf.cast(ends, tf.int32)
        # A piece covers normalized bytes [start, end): map them back to the original
        # characters they came from (an empty piece stays empty).
        first = _gather_rows(byte_char, starts)
        last = _gather_rows(byte_char, tf.maximum(ends - 1, starts))
        origin_start = _gather_rows(char_starts, first)
        origin_end = tf.where(ends > starts, _gather_rows(char_ends, last), origin_start)
        return (ids,) + skip_leading_space(strings, origin_start, origin_end)

    def detokenize(self, ids):
        """Ids -> text (for display and debugging)."""
        return self._model.detokenize(ids)

    # -- saving ----------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update({
            # The pieces travel as an asset file, as keras-hub's tokenizers do.
            "pieces": None,
            "unknown_id": self.unknown_id,
            "charsmap": None,
            "steps": self.steps,
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
            json.dump({"pieces": self.pieces, "charsmap": self.charsmap}, f)

    def load_assets(self, dir_path):
        with open(os.path.join(dir_path, ASSET), encoding="utf-8") as f:
            assets = json.load(f)
        self.charsmap = assets["charsmap"]
        self.set_pieces(assets["pieces"])


def _gather_rows(values, indices):
    """`values[row][indices[row]]` for ragged rows (flat gather, no RaggedRange)."""
    base = tf.gather(values.row_starts(), indices.value_rowids())
    return indices.with_flat_values(
        tf.gather(values.flat_values, base + tf.cast(indices.flat_values, base.dtype)))


def _check_step(step, where):
    kind = step.get("type")
    if kind not in CHARACTER_STEPS:
        raise CheckpointError(f"{where}: normalizer step {kind!r} is not supported")
    if kind == "Replace":
        pattern = (step.get("pattern") or {}).get("String")
        if pattern is None or len(pattern) not in (1, 2) or (
                len(pattern) == 2 and pattern[0] != pattern[1]):
            raise CheckpointError(
                f"{where}: Replace {step.get('pattern')!r} is not supported (only one "
                "character, or a doubled one like ``)")


def _normalize(strings, steps):
    """Apply per-character normalizer steps, keeping where every byte came from.

    Returns the normalized strings; each original character's byte start and end, with
    one more entry per row (the string's length) for a piece at the very end; and for
    every normalized byte the index of its original character, plus that final entry.
    """
    chars, starts = tf.strings.unicode_split_with_offsets(strings, "UTF-8")
    starts = tf.cast(starts, tf.int32)
    ends = starts + tf.strings.length(chars)
    out = chars
    for step in steps:
        kind = step["type"]
        if kind in ("NFC", "NFKC", "NFD", "NFKD"):
            out = tf.ragged.map_flat_values(tf_text.normalize_utf8, out, kind)
        elif kind == "StripAccents":
            out = tf.ragged.map_flat_values(tf.strings.regex_replace, out, r"\p{Mn}", "")
        elif kind == "Lowercase":
            out = tf.ragged.map_flat_values(tf.strings.lower, out, encoding="utf-8")
        else:
            out = _replace(out, step["pattern"]["String"], step["content"])
    rows = out.value_rowids()
    row_starts = tf.cast(out.row_starts(), tf.int32)
    char_in_row = tf.range(tf.size(rows, out_type=tf.int32)) - tf.gather(row_starts, rows)
    lengths = tf.strings.length(out.flat_values)  # bytes each original character became
    row_bytes = tf.math.unsorted_segment_sum(lengths, rows, out.nrows())
    byte_char = tf.RaggedTensor.from_row_lengths(tf.repeat(char_in_row, lengths),
                                                 tf.cast(row_bytes, tf.int64))
    count = tf.cast(out.row_lengths(), tf.int32)[:, tf.newaxis]
    length = tf.strings.length(strings)[:, tf.newaxis]
    return (tf.strings.reduce_join(out, axis=-1), tf.concat([starts, length], axis=1),
            tf.concat([ends, length], axis=1), tf.concat([byte_char, count], axis=1))


def _replace(chars, pattern, content):
    """Replace a one-character or doubled-character pattern, left to right."""
    flat = chars.flat_values
    if len(pattern) == 1:
        return chars.with_flat_values(tf.where(flat == pattern, content, flat))
    # A doubled character (``): in each run of it, pairs from the left become "" (the
    # pair's first character) and `content` (its second, whose offsets the piece then
    # gets, as in Hugging Face's); an odd last one stays.
    hit = flat == pattern[0]
    position = tf.range(tf.size(flat, out_type=tf.int64))
    row_start = tf.gather(chars.row_starts(), chars.value_rowids())
    continues = tf.concat([[False], hit[:-1]], 0) & (position != row_start)
    hits = tf.where(hit)[:, 0]
    starts_run = tf.cast(tf.gather(~continues, hits), tf.int32)
    run = tf.cumsum(starts_run) - 1
    runs = tf.reduce_sum(starts_run)
    first = tf.gather(tf.math.unsorted_segment_min(hits, run, runs), run)
    last = tf.gather(tf.math.unsorted_segment_max(hits, run, runs), run)
    odd = (hits - first) % 2 == 1
    opens = ~odd & (hits < last)
    update = tf.where(opens, "", tf.where(odd, content, tf.gather(flat, hits)))
    return chars.with_flat_values(
        tf.tensor_scatter_nd_update(flat, hits[:, tf.newaxis], update))


# --- tokenizer.json -> settings, and the SentencePiece model ---------------------------------


def settings_from_tokenizer_json(path):
    """`SentencePieceTokenizer` arguments from a Unigram `tokenizer.json`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        raise CheckpointError(f"{path}: model.type {model.get('type')!r} is not Unigram "
                              "(a SentencePiece tokenizer)")
    pieces = [list(p) for p in model.get("vocab") or []]
    added = sorted(data.get("added_tokens") or [], key=lambda t: t["id"])
    for token in added:  # DeBERTa-v3's [MASK] comes after the SentencePiece vocabulary
        if token["id"] == len(pieces):
            pieces.append([token["content"], 0.0])
        elif token["id"] > len(pieces) or pieces[token["id"]][0] != token["content"]:
            raise CheckpointError(f"{path}: added token {token['content']!r} has id "
                                  f"{token['id']}, which does not follow the vocabulary")
    if model.get("unk_id") is None:
        raise CheckpointError(f"{path}: model.unk_id is missing")
    steps, charsmap = _normalizer_steps(data.get("normalizer"), path)
    _check_pre_tokenizer(data.get("pre_tokenizer"), path)
    specials = _special_roles(data, pieces, path)
    return dict(pieces=pieces, unknown_id=model["unk_id"], charsmap=charsmap, steps=steps,
                **specials)


def _normalizer_steps(normalizer, path):
    if normalizer is None:
        return [], None
    steps = normalizer["normalizers"] if normalizer.get("type") == "Sequence" else [normalizer]
    before, charsmap, after_charsmap = [], None, False
    for step in steps:
        kind = step.get("type")
        if kind == "Precompiled":
            charsmap, after_charsmap = step.get("precompiled_charsmap"), True
        elif kind == "Strip":
            continue  # SentencePiece strips whitespace itself
        elif kind == "Replace" and (step.get("pattern") or {}).get(
                "Regex", (step.get("pattern") or {}).get("String")) in WHITESPACE_REPLACEMENTS \
                and step.get("content") == " ":
            # SentencePiece collapses runs of spaces itself; without a character map it
            # sees only " " as whitespace, so tabs and newlines become spaces first.
            before.extend({"type": "Replace", "pattern": {"String": c}, "content": " "}
                          for c in "\t\n\r")
        elif after_charsmap:
            raise CheckpointError(f"{path}: normalizer step {kind!r} after Precompiled is "
                                  "not supported")
        else:
            _check_step(step, f"{path}: normalizer")
            before.append(step)
    return before, charsmap


def _check_pre_tokenizer(pre_tokenizer, path):
    steps = (pre_tokenizer or {}).get("pretokenizers") or [pre_tokenizer or {}]
    for step in steps:
        kind = step.get("type")
        if kind == "WhitespaceSplit":
            continue
        if kind != "Metaspace" or step.get("replacement", "▁") != "▁" or step.get(
                "prepend_scheme", "always") not in ("always", "first"):
            raise CheckpointError(f"{path}: pre_tokenizer {step!r} is not supported (only "
                                  "Metaspace with '▁', prepended)")


def _special_roles(data, pieces, path):
    """cls/sep/pad/unk/mask and the pair layout from the post-processor."""
    names = [p for p, _ in pieces]
    post = data.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        pair = post["pair"]
        specials = [item["SpecialToken"]["id"] for item in pair if "SpecialToken" in item]
        kinds = ["A" if "Sequence" in item and item["Sequence"]["id"] == "A" else
                 "B" if "Sequence" in item else "S" for item in pair]
        a, b = kinds.index("A"), kinds.index("B")
        cls_token, sep_token = specials[0], specials[-1]
        between = b - a - 1
        pair_segment_id = pair[b]["Sequence"]["type_id"]
    elif post.get("type") == "RobertaProcessing":
        cls_token, sep_token, between, pair_segment_id = post["cls"][0], post["sep"][0], 2, 0
    else:
        raise CheckpointError(f"{path}: post_processor {post.get('type')!r} is not supported")
    unknown = names[data["model"]["unk_id"]]

    def first_present(*candidates):
        return next((c for c in candidates if c in names), candidates[0])

    return dict(cls_token=cls_token, sep_token=sep_token,
                pad_token=first_present("<pad>", "[PAD]"), unknown_token=unknown,
                mask_token=first_present("<mask>", "[MASK]"),
                separators_between=between, pair_segment_id=pair_segment_id)


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, wire_type, value):
    key = _varint((number << 3) | wire_type)
    if wire_type == 0:
        return key + _varint(value)
    if wire_type == 5:
        return key + struct.pack("<f", value)
    return key + _varint(len(value)) + value


def model_proto(pieces, unknown_id, charsmap, specials=()):
    """A serialized SentencePiece `ModelProto` (Unigram) with these pieces, in this id
    order; `specials` become control pieces, never produced from text."""
    body = b""
    for i, (piece, score) in enumerate(pieces):
        kind = 2 if i == unknown_id else 3 if piece in specials else 1  # UNKNOWN/CONTROL/NORMAL
        body += _field(1, 2, _field(1, 2, piece.encode("utf-8")) + _field(2, 5, score)
                       + _field(3, 0, kind))
    trainer = _field(3, 0, 1) + _field(4, 0, len(pieces)) + _field(40, 0, unknown_id)
    normalizer = (_field(1, 2, b"kerabert") + _field(2, 2, base64.b64decode(charsmap or ""))
                  + _field(3, 0, 1) + _field(4, 0, 1) + _field(5, 0, 1))
    return body + _field(2, 2, trainer) + _field(3, 2, normalizer)
