"""Random selection of the items (tokens or whole words) that masked-LM predicts.

tensorflow-text's `RandomItemSelector` shuffles each row inside a `map_fn` whose
iterations run in parallel and share one stateful shuffle op, so which row gets which
random numbers depends on thread timing: the same seed gave different masks from run
to run, and held-out perplexity could not be reproduced. `RankedItemSelector` draws
one random score per item in a single op and selects each row's lowest-scoring items,
so the masks follow from the global seed (`keras.utils.set_random_seed`) and the
order of calls. Selection is the same: `ceil(rate * selectable)` items per row,
at most `max_selections_per_batch` (per row, as in tensorflow-text).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text


class RankedItemSelector(tf_text.RandomItemSelector):
    """Selects a random `selection_rate` of each row's selectable items, vectorized.

    A drop-in `tf_text.RandomItemSelector` for `tf_text.mask_language_model`.

    Args:
        max_selections_per_batch: the most items selected in one row.
        selection_rate: the fraction of each row's selectable items to select
            (rounded up).
        unselectable_ids: ids never selected (special tokens).

    Example:

    >>> selector = RankedItemSelector(max_selections_per_batch=2, selection_rate=0.5,
    ...                               unselectable_ids=[0])
    >>> ids = tf.ragged.constant([[0, 5, 6, 7, 0], [0, 8, 0]])
    >>> [int(n) for n in tf.reduce_sum(tf.cast(
    ...     selector.get_selection_mask(ids, axis=1), tf.int32), axis=1)]
    [2, 1]
    """

    def __init__(self, max_selections_per_batch, selection_rate, unselectable_ids=None):
        if not 0.0 < selection_rate <= 1.0:
            raise ValueError(f"selection_rate must be in (0, 1], got {selection_rate}")
        super().__init__(int(max_selections_per_batch), float(selection_rate),
                         unselectable_ids)

    def get_selection_mask(self, input_ids, axis=1):
        if axis != 1:
            raise ValueError(f"RankedItemSelector selects along axis 1, got axis={axis}")
        selectable = self.get_selectable(input_ids, axis)  # ragged [rows, (items)]
        scores = tf.random.uniform(tf.shape(selectable.flat_values))
        # Unselectable items rank after every selectable one, padding after both.
        scores = tf.where(selectable.flat_values, scores, 2.0)
        dense = selectable.with_flat_values(scores).to_tensor(default_value=3.0)
        ranks = tf.argsort(tf.argsort(dense, axis=1, stable=True), axis=1, stable=True)
        counts = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=1)
        wanted = tf.minimum(tf.math.ceil(counts * self.selection_rate),
                            float(self.max_selections_per_batch))
        chosen = ranks < tf.cast(wanted, ranks.dtype)[:, None]
        return tf.RaggedTensor.from_tensor(chosen, lengths=selectable.row_lengths())
