"""Character <-> byte positions in UTF-8 strings, with ops that also run in TFLite.

tensorflow-text's tokenizer gives byte offsets, users and SQuAD count characters
(code points), and `tf.strings.substr` has no TFLite kernel: these functions build
both directions from tensorflow-text's `ByteSplitter`, which has TFLite kernels.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text


def _character_starts(strings):
    """`(starts, is_byte)`, int32 `[batch, max_bytes]`: 1 where a byte starts a
    character (any byte but a continuation byte 10xxxxxx), and 1 where a byte exists
    (0 in the padding of shorter strings)."""
    data = tf_text.ByteSplitter().split(strings)
    # Cast before densifying: TFLite's RaggedTensorToTensor kernel refuses uint8.
    data = tf.cast(data, tf.int32).to_tensor(default_value=-1)
    is_byte = tf.where(data >= 0, 1, 0)
    return tf.where((data < 0x80) | (data >= 0xC0), is_byte, 0), is_byte


def byte_to_char_offsets(strings, byte_offsets):
    """Byte offsets into UTF-8 `strings` -> character (code point) offsets.

    Args:
        strings: a `[batch]` string tensor.
        byte_offsets: an int `[batch, n]` tensor of offsets at character boundaries
            (`0..len(bytes)`).

    Returns:
        An int32 `[batch, n]` tensor: the number of characters before each offset.

    Example:
    ```python
    byte_to_char_offsets(tf.constant(["héllo"]), tf.constant([[0, 3, 6]]))  # [[0, 2, 5]]
    ```
    """
    starts, _ = _character_starts(strings)
    starts = tf.concat([starts, tf.zeros_like(starts[:, :1])], axis=1)
    chars_before = tf.cumsum(starts, axis=1, exclusive=True)
    offsets = tf.minimum(tf.cast(byte_offsets, tf.int32), tf.shape(chars_before)[1] - 1)
    return tf.gather(chars_before, tf.maximum(offsets, 0), batch_dims=1)


def char_substrings(strings, starts, ends):
    """`strings[k][starts[k]:ends[k]]` in characters, `""` where `starts[k] < 0`.

    Args:
        strings: a `[batch]` string tensor.
        starts, ends: int `[batch]` character offsets.

    Example:
    ```python
    char_substrings(tf.constant(["héllo"]), tf.constant([1]), tf.constant([3]))  # [b"\xc3\xa9l"]
    ```
    """
    character_starts, is_byte = _character_starts(strings)
    chars_through = tf.cumsum(character_starts, axis=1)  # characters up to each byte

    def byte_offset(chars):  # bytes of the first `chars` characters
        within = tf.where(chars_through <= tf.expand_dims(chars, 1), is_byte, 0)
        return tf.reduce_sum(within, axis=1)

    found = starts >= 0
    byte_starts = tf.where(found, byte_offset(tf.maximum(starts, 0)), 0)
    byte_ends = tf.where(found, byte_offset(tf.maximum(ends, 0)), 0)
    pieces = tf_text.ByteSplitter().split_by_offsets(
        strings, tf.expand_dims(byte_starts, 1), tf.expand_dims(byte_ends, 1))
    return pieces.flat_values  # one piece per row
