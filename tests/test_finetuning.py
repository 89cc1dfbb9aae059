"""Fine-tuning modes: parameter counts, LoRA save/reload and merge."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training_helpers import tiny_data


@pytest.fixture
def tiny_task(tiny_backbone, tiny_tokenizer):
    from kerabert.heads.classification import SentimentHead
    from kerabert.task import build_model

    return build_model(SentimentHead(labels=["neg", "pos"]), (tiny_backbone, tiny_tokenizer),
                       sequence_length=32, compile=False)


def test_modes_change_trainable_parameters(tiny_task):
    from kerabert import finetuning

    full = finetuning.apply_mode(tiny_task, "full")
    counts = finetuning.parameter_counts(full)
    assert counts["trainable"] == counts["total"] > 20_000
    finetuning.apply_mode(tiny_task, "frozen")
    # Only the logits layer (32 * 2 + 2) trains.
    assert finetuning.parameter_counts(tiny_task)["trainable"] == 66
    finetuning.apply_mode(tiny_task, "lora", lora_rank=2)
    names = {v.path for v in tiny_task.trainable_weights}
    assert any("lora_kernel_a" in n for n in names)
    assert not any(n.endswith("key/kernel") or "intermediate" in n for n in names)
    assert "trainable parameters:" in finetuning.format_parameter_counts(tiny_task)
    with pytest.raises(ValueError, match="mode must be one of"):
        finetuning.apply_mode(tiny_task, "adapters")


@pytest.mark.slow
def test_lora_model_saves_reloads_and_merges(tiny_task, tmp_path):
    from kerabert import finetuning
    from kerabert.task import load_model
    from kerabert.training import compile_task

    finetuning.apply_mode(tiny_task, "lora", lora_rank=2)
    compile_task(tiny_task, learning_rate=1e-2, warmup_steps=0)
    data = tiny_data(32)
    tiny_task.fit(tiny_task.make_dataset(data, batch_size=8, training=True, seed=0),
                  epochs=1, verbose=0)
    layer = finetuning.lora_layers(tiny_task)[0]
    assert float(np.abs(layer.lora_kernel_b.numpy()).sum()) > 0  # the adapters trained
    batch = next(iter(tiny_task.make_dataset(data, batch_size=8)))[0]
    expected = tiny_task.predict_on_batch(batch)

    tiny_task.save(tmp_path / "lora.keras")
    reloaded = load_model(tmp_path / "lora.keras", compile=False)
    # The backbone is rebuilt from its arguments, so the reloaded model has the LoRA
    # updates merged into its kernels and no adapters: same function.
    assert not finetuning.lora_enabled(reloaded)
    np.testing.assert_allclose(reloaded.predict_on_batch(batch), expected, atol=1e-5)

    merged = finetuning.merge_lora(tiny_task)
    assert not finetuning.lora_enabled(merged)
    assert not any("lora" in v.path for v in merged.weights)
    np.testing.assert_allclose(merged.predict_on_batch(batch), expected, atol=1e-5)
