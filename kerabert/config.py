"""What a training run is told: `FitConfig` (the fit core's options, shared by `train`,
`pretrain` and every `tune` trial) and `TrainConfig` (those plus fine-tuning's own).

Plain dataclasses with documented, typed defaults, and the option vocabularies
(`STRATEGIES`, `MODES`, `LENGTH_MODES`; the precisions are `kerabert.precision`'s).
Nothing here imports TensorFlow: the command line builds its `--help` from these
defaults and names.

Example:
```python
config = TrainConfig(batch_size=16, epochs=1, output_dir="runs/sst2")
model, report = kerabert.train("sentiment", "train.tsv", config, learning_rate=3e-5)
```
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kerabert.precision import AUTO, PRECISIONS

# tf.distribute strategies by name (`kerabert.distribute.get_strategy`).
STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")
# Fine-tuning modes (`kerabert.finetuning.apply_mode`).
MODES = ("full", "frozen", "lora")
# Batch padding modes of `kerabert.data.pipeline.make_dataset`.
LENGTH_MODES = ("group", "bucket", "dynamic", "fixed")
# `precision=` values: "auto" or one of the precisions.
PRECISION_OPTIONS = (AUTO, *PRECISIONS)

C = TypeVar("C", bound="FitConfig")


@dataclass
class FitConfig:
    """Options of the fit core (`kerabert.fitting`): schedule, runtime and outputs.

    Attributes:
        batch_size: the global batch size (split over the strategy's replicas).
        epochs, learning_rate, warmup_ratio: the schedule; `None` lets the workflow
            choose (`train`: the head's recipe).
        weight_decay: AdamW's decoupled weight decay (not on biases and LayerNorm).
        clipnorm: global gradient-norm clipping (None or 0: off).
        layerwise_lr_decay: layer-wise learning-rate decay factor (e.g. 0.9); None: off.
        sparse_updates: update only the word-embedding rows each batch uses (lazy Adam).
        steps_per_epoch: steps per epoch (default: one pass over the training data).
        steps_per_execution: training steps per compiled call (TPUs like many).
        jit_compile: compile the training step with XLA (always on under a TPU).
        seed: the seed of initialization, dropout, masking and shuffling.
        deterministic: also make TensorFlow's ops deterministic (slower): with it two
            runs with the same seed end with identical weights (docs/training.md).
        strategy: a `STRATEGIES` name or a `tf.distribute.Strategy`.
        tpu: the TPU address for `strategy="tpu"`/`"auto"`.
        precision: `"auto"` or one of `kerabert.precision.PRECISIONS`.
        output_dir: where the run writes its outputs and `backup/`; None: nothing.
        resume: continue an interrupted run from `output_dir/backup`.
        tensorboard: write TensorBoard logs to `output_dir/logs`.
        save_best: write `best.keras` when there is validation data and `output_dir`.
        monitor: the validation value for early stopping and the best epoch.
        early_stopping_patience: stop after this many epochs without improvement of
            `monitor` (and keep the best weights); None: off.
        callbacks: extra Keras callbacks.
        verbose: Keras `fit` verbosity.
    """

    batch_size: int = 32
    epochs: int | None = None
    learning_rate: float | None = None
    warmup_ratio: float | None = None
    weight_decay: float = 0.01
    clipnorm: float | None = 1.0
    layerwise_lr_decay: float | None = None
    sparse_updates: bool = True
    steps_per_epoch: int | None = None
    steps_per_execution: int = 1
    jit_compile: bool = False
    seed: int = 0
    deterministic: bool = False
    strategy: Any = "auto"
    tpu: str | None = None
    precision: str = AUTO
    output_dir: str | os.PathLike | None = None
    resume: bool = False
    tensorboard: bool = True
    save_best: bool = True
    monitor: str = "val_loss"
    early_stopping_patience: int | None = None
    callbacks: Sequence[Any] = ()
    verbose: Any = "auto"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (the dataclass fields)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def split(cls: type[C], config: C | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[C, dict[str, Any]]:
        """`(config with the options that are fields set, the other options)`: the
        other options of `train` are the head's."""
        options = dict(options or {})
        names = set(cls.names())
        known = {k: options.pop(k) for k in list(options) if k in names}
        if config is None:
            return cls(**known), options
        if not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
        return dataclasses.replace(config, **known), options

    def to_dict(self) -> dict[str, Any]:
        """The options as a dict (callbacks and strategy objects included as they are)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class TrainConfig(FitConfig):
    """`kerabert.train`'s options: `FitConfig` plus fine-tuning's own.

    Attributes:
        backbone: a `load_backbone` spec or `(backbone, tokenizer)`.
        sequence_length: the longest packed input; None: the head's recipe.
        mode: `"full"`, `"frozen"` (head only) or `"lora"` (`MODES`).
        lora_rank: the LoRA rank (mode `"lora"`).
        length_mode: the pipeline's length mode (`LENGTH_MODES`; default `"group"`,
            `"bucket"` with `jit_compile`, `"fixed"` on TPUs).
        max_train_examples, max_validation_examples: use the first N examples.
        read_options: options of the head's file reader (columns, format, ...).
        class_weight: weight each training example's loss by its class (single-label
            classification heads): `"balanced"` (`n / (k * n_c)` from the training
            labels) or `{label: weight}`; None: unweighted. Validation stays unweighted.
    """

    backbone: Any = "all-minilm-l6-v2"
    sequence_length: int | None = None
    mode: str = "full"
    lora_rank: int = 8
    length_mode: str | None = None
    max_train_examples: int | None = None
    max_validation_examples: int | None = None
    read_options: dict[str, Any] | None = None
    class_weight: Any = None
