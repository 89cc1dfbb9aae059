"""The vectorized masked-LM item selector: counts, exclusions, uniformity, reproducibility."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerabert.heads.masked_lm import MaskedLMHead
from kerabert.heads.masking import RankedItemSelector
from tests.conftest import make_tiny_backbone


def _selected(selector, ids, axis=1):
    return selector.get_selection_mask(ids, axis=axis)


def test_selects_ceil_rate_of_selectable_items_capped_per_row():
    selector = RankedItemSelector(max_selections_per_batch=3, selection_rate=0.25,
                                  unselectable_ids=[0, 1])
    ids = tf.ragged.constant([[0, 5, 6, 7, 8, 9, 1], [0, 5, 1], [0, 1], list(range(2, 40))])
    mask = _selected(selector, ids)
    chosen = mask.to_list()
    assert [len(row) for row in chosen] == [7, 3, 2, 38]
    assert [sum(row) for row in chosen] == [2, 1, 0, 3]  # ceil(.25 * 5), ceil(.25), 0, cap
    for row, picks in zip(ids.to_list(), chosen):
        assert not any(pick and token in (0, 1) for token, pick in zip(row, picks))


def test_every_selectable_position_is_equally_likely():
    keras.utils.set_random_seed(0)
    selector = RankedItemSelector(max_selections_per_batch=100, selection_rate=0.15,
                                  unselectable_ids=[0])
    ids = tf.ragged.constant([[0] + list(range(1, 21)) + [0]] * 4000)
    mask = _selected(selector, ids).to_tensor().numpy()
    assert (mask.sum(axis=1) == math.ceil(0.15 * 20)).all()
    frequency = mask[:, 1:21].mean(axis=0)  # 3 of 20 per row: 0.15 each
    assert np.all(np.abs(frequency - 0.15) < 0.025), frequency
    assert not mask[:, [0, 21]].any()


def test_selects_whole_words_on_axis_one():
    selector = RankedItemSelector(max_selections_per_batch=10, selection_rate=0.5,
                                  unselectable_ids=[0])
    words = tf.ragged.constant([[[0], [5, 6], [7], [8, 9, 10], [0]]], ragged_rank=2)
    mask = _selected(selector, words).to_list()
    assert len(mask[0]) == 5 and sum(mask[0]) == 2 and not mask[0][0] and not mask[0][4]


def _held_out_masks(tokenizer, rows, seed):
    keras.utils.set_random_seed(seed)
    model = _masked_lm_model(tokenizer)
    rows = tf.data.Dataset.from_tensor_slices({"token_ids": rows})  # as the corpus packs
    dataset = model.make_dataset(rows, batch_size=64, training=False, parallel=False)
    return np.concatenate([features["mask_positions"].numpy() for features, _ in dataset])


def _masked_lm_model(tokenizer):
    from kerabert.task import Task

    return Task(make_tiny_backbone(), MaskedLMHead(), tokenizer, 32)


@pytest.mark.slow
def test_in_order_masking_repeats_with_the_seed(tiny_tokenizer):
    rng = np.random.default_rng(0)
    rows = rng.integers(5, tiny_tokenizer.vocabulary_size, size=(1100, 32)).astype(np.int32)
    rows[:, 0], rows[:, -1] = tiny_tokenizer.cls_id, tiny_tokenizer.sep_id
    # 1,100 rows are three preprocessing chunks: the order of chunks matters too.
    first = _held_out_masks(tiny_tokenizer, rows, seed=3)
    again = _held_out_masks(tiny_tokenizer, rows, seed=3)
    other = _held_out_masks(tiny_tokenizer, rows, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
