"""Character <-> byte positions in UTF-8 strings (the QA head's offsets and answers)."""

from __future__ import annotations

import tensorflow as tf

from kerabert.heads.utf8 import byte_to_char_offsets, char_substrings

STRINGS = ["héllo wörld", "abc", "x", "café à paris é"]


def test_byte_offsets_become_character_offsets():
    # Every character boundary of each string, in bytes and in characters.
    byte_offsets, char_offsets = [], []
    for text in STRINGS:
        boundaries = [len(text[:i].encode()) for i in range(len(text) + 1)]
        byte_offsets.append(boundaries + [boundaries[-1]] * (15 - len(boundaries)))
        char_offsets.append(list(range(len(text) + 1)) + [len(text)] * (15 - len(boundaries)))
    out = byte_to_char_offsets(tf.constant(STRINGS), tf.constant(byte_offsets))
    assert out.numpy().tolist() == char_offsets


def test_char_substrings_slice_characters_not_bytes():
    starts, ends = [1, 0, -1, 5], [8, 3, -1, 14]
    out = char_substrings(tf.constant(STRINGS), tf.constant(starts), tf.constant(ends))
    expected = [s[a:b] if a >= 0 else "" for s, a, b in zip(STRINGS, starts, ends)]
    assert [x.decode() for x in out.numpy()] == expected == ["éllo wö", "abc", "", "à paris é"]
