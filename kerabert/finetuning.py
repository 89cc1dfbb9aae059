"""Fine-tuning modes: full, frozen backbone, and LoRA.

- `"full"`: every weight trains (the usual BERT fine-tuning).
- `"frozen"`: the backbone is frozen; only the head's layers train (a feature
  extractor: fast, few parameters, usually less accurate).
- `"lora"`: keras-hub's `backbone.enable_lora(rank)`: the backbone is frozen and the
  query and value projections of every attention layer get a trainable low-rank
  update (`kernel + A @ B * alpha / rank`); the head trains fully.

A LoRA model saves to `.keras` like any other: Keras stores each LoRA layer's kernel
with the update merged, and the backbone is rebuilt from its arguments, so the reloaded
model is the merged model without adapters (call `apply_mode(model, "lora")` again to
go on with LoRA). `merge_lora` gives the same merged model in memory, for export;
`save_lora_adapter` writes only the backbone's adapters (keras-hub's `.lora.h5`).

Example:
```python
model = kerabert.build_model("sentiment", labels=["neg", "pos"], compile=False)
apply_mode(model, "lora", lora_rank=8)
print(format_parameter_counts(model))
```
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from kerabert import compat

MODES = ("full", "frozen", "lora")


def apply_mode(model, mode="full", *, lora_rank=8):
    """Make `model.backbone` trainable, frozen, or LoRA-adapted (before `compile`).

    Args:
        model: a `kerabert.Task`.
        mode: one of `MODES`.
        lora_rank: the rank of the LoRA update (mode `"lora"`).

    Returns:
        `model`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    backbone = model.backbone
    if mode == "full":
        backbone.trainable = True
    elif mode == "frozen":
        backbone.trainable = False
    elif lora_enabled(model):
        if compat.lora_rank(backbone) != lora_rank:
            raise ValueError(
                f"LoRA is already enabled with rank {compat.lora_rank(backbone)}, not {lora_rank}"
            )
    else:
        if int(lora_rank) < 1:
            raise ValueError(f"lora_rank must be a positive integer, got {lora_rank}")
        backbone.enable_lora(int(lora_rank))
    return model


def lora_layers(model):
    """The backbone's layers with LoRA enabled."""
    return [
        layer
        for layer in compat.flatten_layers(model.backbone)
        if getattr(layer, "lora_enabled", False)
    ]


def lora_enabled(model):
    return bool(lora_layers(model))


def parameter_counts(model):
    """`{"trainable", "non_trainable", "total"}` parameter counts of `model`."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    frozen = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


def format_parameter_counts(model):
    counts = parameter_counts(model)
    share = 100.0 * counts["trainable"] / max(counts["total"], 1)
    return (
        f"trainable parameters: {counts['trainable']:,} of {counts['total']:,} "
        f"({share:.2f}%)"
    )


def merge_lora(model):
    """A copy of a LoRA model with each update merged into its kernel and no LoRA layers.

    The copy computes the same function, trains fully, and exports like a model that
    never had LoRA.

    Args:
        model: a `kerabert.Task` with LoRA enabled.

    Returns:
        A new `kerabert.Task`.
    """
    from kerabert.task import Task

    if not lora_enabled(model):
        raise ValueError("the model has no LoRA layers to merge")
    config = _without_lora(model.get_config())
    merged = Task.from_config(config)
    with tempfile.TemporaryDirectory() as folder:
        # Keras writes each LoRA layer's kernel with its update merged and no adapters,
        # which is exactly the weight layout of the same model without LoRA.
        path = os.path.join(folder, "merged.weights.h5")
        model.save_weights(path)
        merged.load_weights(path)
    merged.backbone.trainable = True
    for layer in compat.flatten_layers(merged.backbone):
        layer.trainable = True
    return merged


def _without_lora(config):
    if isinstance(config, dict):
        return {
            k: (True if k == "trainable" else _without_lora(v))
            for k, v in config.items()
            if k not in ("lora_rank", "lora_alpha")
        }
    if isinstance(config, list):
        return [_without_lora(v) for v in config]
    return config


def save_lora_adapter(model, path):
    """Write only the trainable LoRA state: the adapters (via keras-hub's
    `save_lora_weights`) of a LoRA model. `path` must end in `.lora.h5`."""
    if not lora_enabled(model):
        raise ValueError("the model has no LoRA layers")
    model.backbone.save_lora_weights(str(path))
    return path


def load_lora_adapter(model, path):
    """Load adapters written by `save_lora_adapter` into a model with the same backbone
    (LoRA is enabled with the file's rank if it is not yet)."""
    model.backbone.load_lora_weights(str(path))
    return model


__all__ = [
    "MODES",
    "apply_mode",
    "format_parameter_counts",
    "load_lora_adapter",
    "lora_enabled",
    "lora_layers",
    "merge_lora",
    "parameter_counts",
    "save_lora_adapter",
]
