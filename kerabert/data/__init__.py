"""Data: readers for local files and tensorflow-datasets, and the tf.data pipeline."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kerabert.data.tables import DataError, Examples, read_table
from kerabert.data.tfds import TFDS_PREFIX, read_tfds

if TYPE_CHECKING:
    from kerabert.heads.base import Head


def load_examples(head: Head, source: str | os.PathLike | Mapping[str, Sequence[Any]],
                  **options: Any) -> Examples:
    """Raw examples for `head` from a file path, `tfds:NAME[:SPLIT]`, or columns.

    Args:
        head: the `kerabert.heads.Head` that will consume them (it reads its own formats).
        source: a path, a `tfds:` spec, or a dict of columns (returned as `Examples`).
        **options: the head reader's options (columns, format, skip_bad, ...).
    """
    if isinstance(source, Examples):
        return source
    if isinstance(source, dict):
        return Examples(source, source="(in memory)")
    source = str(source)
    if source.startswith(TFDS_PREFIX):
        return read_tfds(head, source, **options)
    return head.read(source, **options)


__all__ = ["DataError", "Examples", "load_examples", "read_table", "read_tfds"]
