"""kerabert's AdamW: the fused dense update is Keras' AdamW to float32 rounding, and the
lazy (row-sparse) embedding update touches only the rows a batch used."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerabert.heads.classification import SentimentHead
from kerabert.optim import AdamW
from kerabert.task import Task
from kerabert.training import LayerwiseAdamW, make_optimizer

TEXTS = ["a good film", "the plot was dull", "a great story", "boring and bad"]
LABELS = ["1", "0", "1", "0"]


def _trained(tiny_backbone_factory, tokenizer, optimizer, steps=3):
    keras.utils.set_random_seed(0)
    model = Task(tiny_backbone_factory(), SentimentHead(labels=["0", "1"]), tokenizer, 32)
    model.compile(optimizer=optimizer, loss=model.head.loss())
    features, targets = next(iter(model.make_dataset(
        {"text": TEXTS, "label": LABELS}, batch_size=4, training=True, shuffle=False)))
    for _ in range(steps):
        model.train_on_batch(features, targets)
    return model, features


def _options(weight_decay):
    return dict(learning_rate=1e-2, weight_decay=weight_decay, epsilon=1e-6,
                global_clipnorm=1.0)


def _weights(model):
    return {v.path: v.numpy() for v in model.weights}


def _exclude(optimizer):
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


@pytest.fixture
def backbone_factory():
    from tests.conftest import make_tiny_backbone

    return make_tiny_backbone


@pytest.mark.slow
def test_fused_dense_update_equals_keras_adamw(backbone_factory, tiny_tokenizer):
    reference, _ = _trained(backbone_factory, tiny_tokenizer,
                            _exclude(keras.optimizers.AdamW(**_options(0.01))))
    fused, _ = _trained(backbone_factory, tiny_tokenizer,
                        _exclude(AdamW(sparse_updates=False, **_options(0.01))))
    untrained, _ = _trained(backbone_factory, tiny_tokenizer, keras.optimizers.SGD(0.0), 1)
    expected, got, before = _weights(reference), _weights(fused), _weights(untrained)
    assert expected.keys() == got.keys()
    for path, value in expected.items():
        np.testing.assert_allclose(got[path], value, atol=2e-6, err_msg=path)
    # The weights did train: the comparison is not of two untouched models.
    assert sum(not np.allclose(expected[p], before[p]) for p in expected) > len(expected) // 2


@pytest.mark.slow
def test_lazy_update_moves_only_the_rows_a_batch_used(backbone_factory, tiny_tokenizer):
    lazy, features = _trained(backbone_factory, tiny_tokenizer,
                              _exclude(AdamW(sparse_updates=True, **_options(0.01))))
    dense, _ = _trained(backbone_factory, tiny_tokenizer,
                        _exclude(AdamW(sparse_updates=False, **_options(0.01))))
    untrained, _ = _trained(backbone_factory, tiny_tokenizer, keras.optimizers.SGD(0.0), 1)
    name = lazy.backbone.token_embedding.embeddings.path
    used = np.unique(features["token_ids"].numpy())
    unused = np.setdiff1d(np.arange(lazy.backbone.vocabulary_size), used)
    before = _weights(untrained)[name]
    lazy_rows, dense_rows = _weights(lazy)[name], _weights(dense)[name]
    # Rows no example used: untouched by the lazy update, decayed by the dense one.
    np.testing.assert_array_equal(lazy_rows[unused], before[unused])
    assert not np.allclose(dense_rows[unused], before[unused])
    # Rows the batch used (every step here): the same Adam update in both.
    np.testing.assert_allclose(lazy_rows[used], dense_rows[used], atol=2e-6)
    assert not np.allclose(lazy_rows[used], before[used])


@pytest.mark.slow
def test_layerwise_multipliers_scale_a_layers_update(backbone_factory, tiny_tokenizer):
    frozen_layer0 = _exclude(AdamW(multipliers=[["^transformer_layer_0/", 0.0]],
                                   **_options(0.0)))
    model, _ = _trained(backbone_factory, tiny_tokenizer, frozen_layer0)
    untrained, _ = _trained(backbone_factory, tiny_tokenizer, keras.optimizers.SGD(0.0), 1)
    after, before = _weights(model), _weights(untrained)
    layer0 = [p for p in after if p.startswith("transformer_layer_0/")]
    layer1 = [p for p in after if p.startswith("transformer_layer_1/")]
    assert layer0 and layer1
    for path in layer0:
        np.testing.assert_array_equal(after[path], before[path])
    assert any(not np.allclose(after[p], before[p]) for p in layer1)


def test_optimizer_config_round_trips():
    optimizer = make_optimizer(3e-5, total_steps=100, sparse_updates=False)
    assert isinstance(optimizer, AdamW)
    clone = AdamW.from_config(optimizer.get_config())
    assert clone.sparse_updates is False and clone.multipliers == []
    # Models saved before the rename name "LayerwiseAdamW": it still builds.
    old = LayerwiseAdamW(multipliers=[["^x/", 0.5]], learning_rate=1e-3)
    assert isinstance(old, AdamW) and old.multipliers == [["^x/", 0.5]]
    with pytest.raises(ValueError, match="amsgrad"):
        AdamW(amsgrad=True)
