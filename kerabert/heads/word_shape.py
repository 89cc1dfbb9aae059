"""The case class of a word ("word shape"), from its original text, for the `ner` head.

Uncased checkpoints (the default all-MiniLM-L6-v2 among them) lower-case their input,
so the model cannot see that `Paris` is capitalised or `IBM` all capitals, cues that
CoNLL entities (ORG, MISC, PER) lean on. The `ner` head's `case_feature` feeds each
word piece the class of the word it belongs to, computed from the original text:

| id | class | examples |
|---|---|---|
| 0 | `PAD`: special tokens (`[CLS]`, `[SEP]`) and padding | |
| 1 | `LOWER`: every letter lower case | `paris`, `1st`, `e-mail` |
| 2 | `TITLE`: the first letter upper case, the others lower | `Paris`, `Zürich`, `A`, `O'neil` |
| 3 | `UPPER`: two letters or more, all upper case | `IBM`, `U.S.`, `ÉTÉ` |
| 4 | `MIXED`: any other mix | `McDonald`, `iPhone`, `O'Neil` |
| 5 | `NO_LETTERS`: no cased letter (digits, punctuation, uncased scripts) | `1996`, `,`, `東京` |

Letters are the cased letters (Unicode categories Lu, Lt: upper; Ll: lower) among the
code points below U+0800, i.e. of one- and two-byte UTF-8 characters: ASCII,
Latin-1, Latin Extended-A/B, IPA, Greek, Cyrillic, Armenian. Longer characters count
as no letter. Non-letters never change the class (`U.S.` is `UPPER`).

Two implementations agree: `word_case` (pure Python, for clients without TensorFlow)
and `case_classes` (TensorFlow, dense ops on UTF-8 bytes: `gather`, `cumsum`,
`unsorted_segment_max`, which TFLite has builtins for; no regex op, no lookup table).
"""

from __future__ import annotations

import unicodedata

PAD, LOWER, TITLE, UPPER, MIXED, NO_LETTERS = range(6)
NUM_CASES = 6
CASE_NAMES = ("pad", "lower", "title", "upper", "mixed", "no_letters")
_LIMIT = 0x800  # code points of one- and two-byte UTF-8 characters


def char_case(char):
    """0 for a non-letter (or a code point from U+0800 on), 1 lower, 2 upper/title case."""
    if ord(char) >= _LIMIT:
        return 0
    category = unicodedata.category(char)
    return 2 if category in ("Lu", "Lt") else 1 if category == "Ll" else 0


_CHAR_CASES = [char_case(chr(code)) for code in range(_LIMIT)]


def word_case(word):
    """The case class (1-5, see the module docstring) of one word's original text.

    Example:
    ```python
    [word_case(w) for w in ["paris", "Zürich", "IBM", "McDonald", "1996"]]  # [1, 2, 3, 4, 5]
    ```
    """
    letters = [c for c in (char_case(ch) for ch in word) if c]
    return _combine(len(letters), sum(c == 2 for c in letters), bool(letters) and letters[0] == 2)


def _combine(letters, upper, first_upper):
    if not letters:
        return NO_LETTERS
    if not upper:
        return LOWER
    if upper == letters and letters >= 2:
        return UPPER
    if first_upper and upper == 1:
        return TITLE
    return MIXED


def case_classes(data, starts, ends):
    """Case classes of byte ranges of UTF-8 strings, in the graph.

    Args:
        data: int32 `[n, bytes]`: the bytes (0-255) of `n` strings, padded with any
            value outside 128-255 (e.g. 0 or -1).
        starts, ends: int `[n, k]`: `k` byte ranges `[start, end)` per string (at
            character boundaries, within `0..bytes`).

    Returns:
        int32 `[n, k]`: the class (1-5) of each range.

    Example:
    ```python
    data = tf.cast(tf_text.ByteSplitter().split(tf.constant(["Big IBM"])), tf.int32)
    case_classes(data.to_tensor(), tf.constant([[0, 4]]), tf.constant([[3, 7]]))  # [[2, 3]]
    ```
    """
    import tensorflow as tf

    data = tf.convert_to_tensor(data, tf.int32)
    rows = tf.shape(data)[0]
    data = tf.concat([data, tf.fill([rows, 1], -1)], axis=1)  # room for next bytes
    width = tf.shape(data)[1]
    following = tf.concat([data[:, 1:], tf.fill([rows, 1], -1)], axis=1)
    # The code point of the character starting at each byte (one or two bytes); 0 on
    # continuation bytes, longer characters and padding, which are no letter.
    two_bytes = (data >= 0xC2) & (data < 0xE0) & (following >= 0x80) & (following < 0xC0)
    code = tf.where((data >= 0) & (data < 0x80), data,
                    tf.where(two_bytes, (data - 0xC0) * 64 + (following - 0x80), 0))
    char = tf.gather(tf.constant(_CHAR_CASES, tf.int32), code)
    letter = tf.where(char > 0, 1, 0)
    upper = tf.where(char == 2, 1, 0)
    zero = tf.zeros([rows, 1], tf.int32)
    letters_before = tf.concat([zero, tf.cumsum(letter, axis=1)], axis=1)
    upper_before = tf.concat([zero, tf.cumsum(upper, axis=1)], axis=1)
    starts = tf.clip_by_value(tf.cast(starts, tf.int32), 0, width - 1)
    ends = tf.clip_by_value(tf.cast(ends, tf.int32), 0, width - 1)

    def count(before):
        return (tf.gather(before, ends, batch_dims=1)
                - tf.gather(before, starts, batch_dims=1))

    letters, uppers = count(letters_before), count(upper_before)
    # Whether the k-th letter of each string is upper case: letter number -> flag.
    rank = letters_before[:, :-1]
    slots = rows * width
    segments = tf.where(letter > 0, tf.range(rows)[:, tf.newaxis] * width + rank, slots)
    upper_of_rank = tf.reshape(
        tf.math.unsorted_segment_max(upper, segments, slots + 1)[:slots], [rows, width])
    first = tf.minimum(tf.gather(letters_before, starts, batch_dims=1), width - 1)
    first_upper = tf.gather(upper_of_rank, first, batch_dims=1) > 0
    return tf.where(
        letters == 0, NO_LETTERS, tf.where(
            uppers == 0, LOWER, tf.where(
                (uppers == letters) & (letters >= 2), UPPER, tf.where(
                    first_upper & (uppers == 1), TITLE, MIXED))))
