"""Layers that several heads share."""

from __future__ import annotations

import keras


def dropout_logits(x, units, dropout, dropout_name):
    """Dropout then a Dense output layer named `logits`, as BERT's task heads use.

    The Dense layer is float32 so logits stay float32 under mixed precision, and it is
    initialized like BERT's own layers (truncated normal, stddev 0.02).

    Args:
        x: the backbone output the head reads (`pooled_output` or `sequence_output`).
        units: the number of logits per position.
        dropout: the dropout rate.
        dropout_name: the dropout layer's name (kept stable: saved models refer to it).
    """
    x = keras.layers.Dropout(dropout, name=dropout_name)(x)
    return keras.layers.Dense(
        units,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype="float32",
        name="logits",
    )(x)
