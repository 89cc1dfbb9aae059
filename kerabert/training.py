"""Optimizer defaults and the `train` workflow behind `kerabert train`.

BERT fine-tuning defaults: AdamW (weight decay 0.01, not on LayerNorm or bias
variables), a learning rate that warms up linearly and then decays linearly to zero,
and global-norm gradient clipping at 1.0.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import keras
import tensorflow as tf

from kerabert.data import pipeline

NO_DECAY = ("bias", "gamma", "beta")  # Keras names of bias and LayerNorm variables


@keras.saving.register_keras_serializable(package="kerabert")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak_learning_rate`, then linear decay to
    `end_learning_rate` at `total_steps` (constant after warmup if `total_steps` is None).

    Args:
        peak_learning_rate: the rate reached at the end of warmup.
        warmup_steps: steps of warmup.
        total_steps: the step at which the rate reaches `end_learning_rate`.
        end_learning_rate: the final rate.

    Example:
    ```python
    schedule = WarmupLinearDecay(5e-5, warmup_steps=100, total_steps=1000)
    ```
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps=None,
                 end_learning_rate=0.0):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = self.peak_learning_rate
        warmup = float(max(self.warmup_steps, 1))
        rising = peak * tf.minimum(step + 1.0, warmup) / warmup
        if self.total_steps is None:
            return rising
        span = float(max(self.total_steps - self.warmup_steps, 1))
        done = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        falling = peak + (self.end_learning_rate - peak) * done
        return tf.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate,
        }


def make_optimizer(learning_rate=5e-5, total_steps=None, warmup_ratio=0.1, warmup_steps=None,
                   weight_decay=0.01, clipnorm=1.0):
    """AdamW with warmup + linear decay, no weight decay on LayerNorm and bias.

    Args:
        learning_rate: the peak learning rate.
        total_steps: training steps (for the decay); None keeps the rate after warmup.
        warmup_ratio: warmup as a fraction of `total_steps` (if `warmup_steps` is None).
        warmup_steps: warmup steps.
        weight_decay: decoupled weight decay.
        clipnorm: global gradient-norm clipping (None: off).
    """
    if warmup_steps is None:
        warmup_steps = int(math.ceil((total_steps or 0) * warmup_ratio))
    schedule = WarmupLinearDecay(learning_rate, warmup_steps, total_steps)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        epsilon=1e-6,
        global_clipnorm=clipnorm,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer


def compile_task(model, optimizer=None, jit_compile=False, **optimizer_options):
    """Compile a task with its head's loss and metrics and kerabert's optimizer."""
    model.compile(
        optimizer=optimizer or make_optimizer(**optimizer_options),
        loss=model.head.loss(),
        metrics=model.head.metrics(),
        jit_compile=jit_compile,
    )
    return model


class ThroughputLogger(keras.callbacks.Callback):
    """Adds examples per second (over each epoch, excluding the first batch) to the logs."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start = None
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        if self._start is None:  # the first batch includes tracing
            self._start = time.perf_counter()
        else:
            self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._start is not None and self._batches:
            elapsed = time.perf_counter() - self._start
            logs["examples_per_second"] = self._batches * self.batch_size / elapsed


def train(head, train_data, *, backbone="all-minilm-l6-v2", validation_data=None,
          sequence_length=128, batch_size=32, epochs=1, learning_rate=5e-5,
          warmup_ratio=0.1, weight_decay=0.01, max_train_examples=None,
          max_validation_examples=None, output_dir=None, seed=0, read_options=None,
          callbacks=(), jit_compile=False, verbose="auto", **head_options):
    """Fine-tune a head on a backbone, evaluate it, and save it.

    Args:
        head: a head name or `Head` instance.
        train_data: a file path, `tfds:NAME[:SPLIT]`, or `Examples` columns.
        backbone: a `load_backbone` spec or `(backbone, tokenizer)`.
        validation_data: like `train_data`; evaluated after training.
        sequence_length, batch_size, epochs, learning_rate, warmup_ratio, weight_decay:
            the training schedule.
        max_train_examples, max_validation_examples: use the first N examples.
        output_dir: where to save `model.keras`, `metrics.json` and `history.json`.
        seed: the seed of initialization and shuffling.
        read_options: options of the head's file reader (columns, format, ...).
        callbacks: extra Keras callbacks.
        jit_compile: compile the training step with XLA.
        verbose: Keras `fit` verbosity.
        **head_options: options of a named head.

    Returns:
        `(model, report)`: the trained `Task` and a dict of what was measured.

    Example:
    ```python
    model, report = kerabert.train("sentiment", "train.tsv", validation_data="dev.tsv",
                                   read_options={"text_column": "sentence"})
    ```
    """
    from kerabert.data import load_examples
    from kerabert.task import build_model, resolve_head

    keras.utils.set_random_seed(seed)
    head = resolve_head(head, **head_options)
    read_options = read_options or {}
    train_examples = load_examples(head, train_data, **read_options).head(max_train_examples)
    head.adapt(train_examples)
    validation_examples = None
    if validation_data is not None:
        validation_examples = load_examples(head, validation_data, **read_options).head(
            max_validation_examples
        )
    model = build_model(head, backbone, sequence_length=sequence_length, compile=False)
    steps = pipeline.steps_per_epoch(len(train_examples), batch_size) * epochs
    compile_task(model, jit_compile=jit_compile, learning_rate=learning_rate,
                 total_steps=steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay)
    dataset = model.make_dataset(train_examples, batch_size=batch_size, training=True, seed=seed)
    started = time.perf_counter()
    history = model.fit(
        dataset,
        epochs=epochs,
        callbacks=[ThroughputLogger(batch_size), *callbacks],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    report = {
        "head": head.name,
        "train_examples": len(train_examples),
        "epochs": epochs,
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "train_seconds": round(train_seconds, 1),
        "train_examples_per_second": round(len(train_examples) * epochs / train_seconds, 2),
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    }
    if validation_examples is not None:
        started = time.perf_counter()
        report["validation"] = model.evaluate_examples(validation_examples, batch_size=64)
        report["validation_seconds"] = round(time.perf_counter() - started, 1)
    if output_dir is not None:
        save_trained(model, report, output_dir)
    return model, report


def save_trained(model, report, output_dir):
    """Write `model.keras` and `metrics.json` into `output_dir` (written then renamed,
    so an interrupted save leaves the previous files whole)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / "model.partial.keras"
    model.save(partial)
    os.replace(partial, output_dir / "model.keras")
    with open(output_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return output_dir / "model.keras"
