"""Optimizer defaults and the `train` workflow behind `kerabert train`.

BERT fine-tuning defaults: AdamW (weight decay 0.01, not on LayerNorm or bias
variables), a learning rate that warms up linearly and then decays linearly to zero,
and global-norm gradient clipping at 1.0.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf
from keras import ops

from kerabert.callbacks import BACKUP_FOLDER, CrashSafeBackup, backup_epoch, save_model_file
from kerabert.callbacks import remove_backup, write_json_atomic
from kerabert.data import pipeline
from kerabert.heads.base import Head
from kerabert.optim import AdamW
from kerabert.precision import check_precision, resolve_precision
from kerabert.validation import checked_training

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


@keras.saving.register_keras_serializable(package="kerabert")
class LayerwiseAdamW(AdamW):
    """The name models saved before `kerabert.optim.AdamW` took multipliers itself
    stored; kept so that they load. New code uses `kerabert.optim.AdamW`."""


def layerwise_multipliers(model, decay):
    """`LayerwiseAdamW` multipliers: the head and pooler 1, transformer layer `i` (of
    `L`) `decay ** (L - i)`, embeddings `decay ** (L + 1)`.

    Args:
        model: a `kerabert.Task` (its backbone's `num_layers` is read).
        decay: the factor between adjacent layers, in (0, 1].
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"layer-wise learning-rate decay must be in (0, 1], got {decay}")
    layers = model.backbone.num_layers
    rules = [[f"^transformer_layer_{i}/", decay ** (layers - i)] for i in range(layers)]
    rules.append(["^(token_embedding|position_embedding|segment_embedding|"
                  "embeddings_layer_norm)/", decay ** (layers + 1)])
    return rules


def make_optimizer(learning_rate=5e-5, total_steps=None, warmup_ratio=0.1, warmup_steps=None,
                   weight_decay=0.01, clipnorm=1.0, layerwise_lr_decay=None, model=None,
                   sparse_updates=True):
    """AdamW with warmup + linear decay, no weight decay on LayerNorm and bias
    (`kerabert.optim.AdamW`: fused dense updates, row-sparse embedding updates).

    Args:
        learning_rate: the peak learning rate.
        total_steps: training steps (for the decay); None keeps the rate after warmup.
        warmup_ratio: warmup as a fraction of `total_steps` (if `warmup_steps` is None).
        warmup_steps: warmup steps.
        weight_decay: decoupled weight decay.
        clipnorm: global gradient-norm clipping (None or 0: off).
        layerwise_lr_decay: a factor in (0, 1] for layer-wise learning-rate decay
            (needs `model`); None: one rate for all layers.
        model: the `kerabert.Task` to train (for layer-wise decay).
        sparse_updates: update only the embedding rows a batch used (lazy Adam);
            `False` updates every row every step, as Keras' AdamW does.

    Example:
    ```python
    optimizer = make_optimizer(3e-5, total_steps=1000, layerwise_lr_decay=0.9,
                               model=model)
    ```
    """
    if warmup_steps is None:
        warmup_steps = int(math.ceil((total_steps or 0) * warmup_ratio))
    schedule = WarmupLinearDecay(learning_rate, warmup_steps, total_steps)
    multipliers = ()
    if layerwise_lr_decay is not None:
        if model is None:
            raise ValueError("layer-wise learning-rate decay needs the model")
        multipliers = layerwise_multipliers(model, layerwise_lr_decay)
    optimizer = AdamW(
        multipliers=multipliers,
        sparse_updates=sparse_updates,
        learning_rate=schedule,
        weight_decay=weight_decay,
        epsilon=1e-6,
        global_clipnorm=clipnorm or None,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer


def compile_task(model, optimizer=None, jit_compile=False, steps_per_execution=1,
                 **optimizer_options):
    """Compile a task with its head's loss and metrics and kerabert's optimizer.

    Under the `mixed_float16` policy Keras wraps the optimizer in a
    `LossScaleOptimizer` (dynamic loss scaling) by itself.
    """
    if optimizer is None:
        optimizer = make_optimizer(model=model, **optimizer_options)
    model.compile(
        optimizer=optimizer,
        loss=model.head.loss(),
        metrics=model.head.metrics(),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Training options a head's `recipe` gives when the caller leaves them unset (None).
RECIPE_KEYS = ("epochs", "learning_rate", "warmup_ratio", "sequence_length")
# A recipe's `min_examples` raises its epochs on small training sets up to this many.
MAX_RECIPE_EPOCHS = 10


@contextlib.contextmanager
def precision_policy(precision):
    """Set Keras' global dtype policy for building a model, and restore it after.

    `mixed_float16` / `mixed_bfloat16` compute in 16 bits and keep float32 variables;
    heads keep their logits in float32. The policy must be set before layers are built.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class ThroughputLogger(keras.callbacks.Callback):
    """Adds examples per second to the logs (so the progress bar shows it): per batch
    since the epoch's second batch, and per epoch (the first batch, which includes
    tracing, excluded).

    Args:
        batch_size: examples per step (the global batch).
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start = None
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        if self._start is None:  # the first batch includes tracing
            self._start = time.perf_counter()
            return
        self._batches += 1
        if logs is not None:
            logs["examples_per_second"] = self._rate()

    def _rate(self):
        return self._batches * self.batch_size / max(time.perf_counter() - self._start, 1e-9)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._start is not None and self._batches:
            logs["examples_per_second"] = self._rate()


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint(save_best_only=True)` that also writes `best.json` (the monitored
    value and epoch), so a resumed run only replaces the best model with a better one.

    Args:
        filepath: where to save the best model (`.keras`).
        monitor: the logged value to watch, e.g. `"val_loss"`.
        **kwargs: `keras.callbacks.ModelCheckpoint` arguments.
    """

    def __init__(self, filepath, monitor="val_loss", **kwargs):
        self.record = Path(filepath).with_suffix(".json")
        previous = _read_json(self.record)
        if previous and previous.get("monitor") == monitor:
            kwargs.setdefault("initial_value_threshold", previous["value"])
        super().__init__(filepath, monitor=monitor, save_best_only=True, **kwargs)

    def _save_model(self, epoch, batch, logs):
        # Written then renamed, without the optimizer's state (the backup has it).
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):  # updates self.best
            save_model_file(self.model, filepath)
            write_json_atomic(self.record, {"monitor": self.monitor,
                                            "value": float(self.best), "epoch": epoch + 1})


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def shuffled_stream(examples, fields, seed):
    """Raw examples as an endless stream, reshuffled every pass with the seed
    `(seed, pass)`: the same stream however many times it is iterated (tf.data's own
    reshuffling advances with every new iterator), so two runs, two strategies, or a
    run and its resumption see the same batches."""
    columns = next(iter(pipeline.examples_to_dataset(
        examples, [f for f in fields if f in examples]).batch(len(examples))))
    size = len(examples)

    def one_pass(n):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), n]))
        return tf.data.Dataset.from_tensor_slices(order)

    return tf.data.Dataset.counter().flat_map(one_pass).map(
        lambda i: {k: v[i] for k, v in columns.items()})


def with_known_cardinality(dataset):
    """`dataset` with its number of batches counted and asserted, so Keras knows where
    an evaluation ends (instead of warning that the input "ran out of data")."""
    batches = int(dataset.reduce(0, lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def _monitor_mode(monitor):
    return "min" if "loss" in monitor else "max"


def _load_backbone(backbone, precision):
    from kerabert.task import resolve_backbone

    if isinstance(backbone, str) or hasattr(backbone, "__fspath__"):
        from kerabert.backbone import load_backbone

        return load_backbone(backbone, dtype=precision)
    backbone, tokenizer = resolve_backbone(backbone)
    if backbone.dtype_policy.name != precision:
        raise ValueError(
            f"the backbone was built with dtype policy {backbone.dtype_policy.name!r}, "
            f"not {precision!r}: pass a checkpoint spec, or build it under the policy"
        )
    return backbone, tokenizer


@checked_training  # options checked first; --output rules; overwrite=False
def train(head, train_data, *, backbone="all-minilm-l6-v2", validation_data=None,
          sequence_length=None, batch_size=32, epochs=None, learning_rate=None,
          warmup_ratio=None, weight_decay=0.01, max_train_examples=None,
          max_validation_examples=None, output_dir=None, seed=0, read_options=None,
          callbacks=(), jit_compile=False, verbose="auto", strategy="auto",
          precision="auto", mode="full", lora_rank=8, resume=False,
          early_stopping_patience=None, monitor="val_loss", save_best=True,
          tensorboard=True, layerwise_lr_decay=None, clipnorm=1.0, steps_per_epoch=None,
          length_mode=None, steps_per_execution=1, deterministic=False, tpu=None,
          sparse_updates=True, **head_options):
    """Fine-tune a head on a backbone, evaluate it, and save it.

    Training runs on an endless, seeded stream of batches cut into epochs of
    `steps_per_epoch` steps (by default one pass over the data), so epochs are exact
    and a resumed run sees the same batches as an uninterrupted one.

    Args:
        head: a head name or `Head` instance.
        train_data: a file path, `tfds:NAME[:SPLIT]`, or `Examples` columns.
        backbone: a `load_backbone` spec or `(backbone, tokenizer)`.
        validation_data: like `train_data`; validated after each epoch (Keras loss and
            metrics, for early stopping and the best checkpoint) and scored with the
            head's own metrics after training. With it, the returned and saved model
            is the best epoch's (by `monitor`), not the last one's.
        sequence_length, epochs, learning_rate, warmup_ratio, weight_decay: the
            training schedule; `None` takes the head's `recipe` value.
        batch_size: the global batch size (split over the strategy's replicas).
        max_train_examples, max_validation_examples: use the first N examples.
        output_dir: where to save `model.keras`, `metrics.json`, `best.keras` (best
            validation model), `logs/` (TensorBoard) and `backup/` (while running).
        seed: the seed of initialization, dropout and shuffling.
        read_options: options of the head's file reader (columns, format, ...).
        callbacks: extra Keras callbacks.
        jit_compile: compile the training step with XLA.
        verbose: Keras `fit` verbosity.
        strategy: a `kerabert.distribute.STRATEGIES` name or a `tf.distribute.Strategy`.
        precision: `"auto"` (bfloat16 where the hardware computes it natively, else
            float32: `kerabert.precision.auto_precision`), `"float32"`,
            `"mixed_float16"` (with dynamic loss scaling) or `"mixed_bfloat16"`.
        mode: `"full"`, `"frozen"` (head only) or `"lora"` (see `kerabert.finetuning`).
        lora_rank: the LoRA rank (mode `"lora"`).
        resume: continue an interrupted run from `output_dir/backup` (written at the
            end of every epoch). Without it, a leftover backup is an error.
        early_stopping_patience: stop after this many epochs without improvement of
            `monitor` (and keep the best weights); None: off.
        monitor: the validation value for early stopping and `best.keras`
            (`"val_loss"`, `"val_accuracy"`, ...).
        save_best: write `best.keras` when there is validation data and `output_dir`.
        tensorboard: write TensorBoard logs to `output_dir/logs`.
        layerwise_lr_decay: layer-wise learning-rate decay factor (e.g. 0.9); None: off.
        clipnorm: global gradient-norm clipping (None or 0: off).
        steps_per_epoch: steps per epoch (default: one pass over the training data).
        length_mode: the pipeline's length mode (default `"group"`: batches of
            nearly equal lengths cut to their longest row; with `jit_compile`
            `"bucket"`, a few shapes each compiled once; TPUs use "fixed").
        steps_per_execution: training steps per compiled call (TPUs like many).
        deterministic: make TensorFlow ops deterministic (slower).
        tpu: the TPU address for `strategy="tpu"`/`"auto"`.
        sparse_updates: update only the word-embedding rows each batch uses (lazy
            Adam; `kerabert.optim.AdamW`); False: every row every step.
        **head_options: options of a named head.

    Returns:
        `(model, report)`: the trained `Task` and a dict of what was measured.

    Example:
    ```python
    model, report = kerabert.train("sentiment", "train.tsv", validation_data="dev.tsv",
                                   read_options={"text_column": "sentence"},
                                   mode="lora", precision="mixed_bfloat16",
                                   output_dir="runs/sst2", resume=True)
    ```
    """
    from kerabert import distribute, finetuning
    from kerabert.data import load_examples
    from kerabert.task import build_model, resolve_backbone, resolve_head

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if isinstance(strategy, str):
        strategy = distribute.get_strategy(strategy, tpu=tpu)
    tpu_strategy = isinstance(strategy, tf.distribute.TPUStrategy)
    if precision == "auto" and not (isinstance(backbone, str) or hasattr(backbone, "__fspath__")):
        precision = resolve_backbone(backbone)[0].dtype_policy.name  # built: keep its policy
    precision = resolve_precision(precision, accelerator=tpu_strategy)
    check_precision(precision, accelerator=tpu_strategy)  # an error, not a oneDNN abort
    head = resolve_head(head, **head_options)
    read_options = read_options or {}
    train_examples = load_examples(head, train_data, **read_options).head(max_train_examples)
    recipe = recipe_for(head, train_examples=len(train_examples), epochs=epochs,
                        learning_rate=learning_rate, warmup_ratio=warmup_ratio,
                        sequence_length=sequence_length)
    epochs, learning_rate = recipe["epochs"], recipe["learning_rate"]
    warmup_ratio, sequence_length = recipe["warmup_ratio"], recipe["sequence_length"]
    head.adapt(train_examples)
    validation_examples = None
    if validation_data is not None:
        validation_examples = load_examples(head, validation_data, **read_options).head(
            max_validation_examples
        )

    # Outputs: the chief writes into output_dir; other workers into a scratch folder.
    chief = distribute.is_chief(strategy)
    work_dir = None
    if output_dir is not None:
        work_dir = Path(output_dir) if chief else Path(
            tempfile.mkdtemp(prefix=f"kerabert-worker{distribute.worker_index(strategy)}-")
        )
        work_dir.mkdir(parents=True, exist_ok=True)
    elif resume:
        raise ValueError("resume needs the output_dir of the interrupted run")
    initial_epoch = backup_epoch(output_dir) if output_dir is not None else None
    if initial_epoch is not None and not resume:
        raise ValueError(
            f"{Path(output_dir) / BACKUP_FOLDER}: an interrupted run's backup is there; "
            "resume it (resume=True, --resume) or delete the folder"
        )
    if initial_epoch is not None and not chief:
        # Every worker must restore the same state: the chief's backup (CrashSafeBackup
        # reads only its own folder, here a new scratch folder). The chief cannot
        # rewrite it before this worker joins the first epoch's collectives.
        shutil.copytree(Path(output_dir) / BACKUP_FOLDER, work_dir / BACKUP_FOLDER)
    initial_epoch = initial_epoch or 0

    with precision_policy(precision), strategy.scope():
        model = build_model(head, _load_backbone(backbone, precision),
                            sequence_length=sequence_length, compile=False)
        finetuning.apply_mode(model, mode, lora_rank=lora_rank)
        train_examples, rows = head.prepare_examples(
            train_examples, model.tokenizer, sequence_length,
            skip_bad=bool(read_options.get("skip_bad")))
        steps_per_epoch = steps_per_epoch or pipeline.steps_per_epoch(rows, batch_size)
        total_steps = steps_per_epoch * epochs
        compile_task(
            model, jit_compile=jit_compile or tpu_strategy,
            steps_per_execution=steps_per_execution, learning_rate=learning_rate,
            total_steps=total_steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
            clipnorm=clipnorm, layerwise_lr_decay=layerwise_lr_decay,
            sparse_updates=sparse_updates,
        )
        # Optimizer variables are created here, inside the scope (a restored backup
        # loads into them).
        model.optimizer.build(model.trainable_variables)
    parameters = finetuning.parameter_counts(model)
    if verbose:
        print(f"kerabert: {distribute.describe(strategy)['strategy']} strategy, "
              f"{strategy.num_replicas_in_sync} replica(s), {precision}, mode {mode}; "
              f"{finetuning.format_parameter_counts(model)}")

    data_options = distribute.tpu_dataset_options() if tpu_strategy else {}
    if length_mode is not None:
        data_options["length_mode"] = length_mode
    elif jit_compile:
        data_options.setdefault("length_mode", "bucket")  # bounded shapes: few compiles

    def dataset_fn(per_replica_batch, context):
        pipelines = context.num_input_pipelines if context else 1
        dataset = model.make_dataset(
            shuffled_stream(distribute.shard_examples(train_examples, context),
                            head.fields + head.target_fields, seed),
            batch_size=per_replica_batch, training=True, shuffle=False, **data_options,
        )
        # Resuming: skip the batches the finished epochs consumed (same stream).
        batches_per_step = strategy.num_replicas_in_sync // pipelines
        skip = initial_epoch * steps_per_epoch * batches_per_step
        return dataset.skip(skip) if skip else dataset

    dataset = distribute.distribute_dataset(strategy, dataset_fn, batch_size)
    validation_dataset = None
    if validation_examples is not None:
        validation_dataset = with_known_cardinality(model.make_dataset(
            validation_examples, batch_size=batch_size, training=False,
            **({"length_mode": "fixed", "drop_remainder": True} if tpu_strategy else {}),
        ))

    all_callbacks = [keras.callbacks.TerminateOnNaN(), ThroughputLogger(batch_size)]
    if work_dir is not None:
        if tensorboard:
            all_callbacks.append(keras.callbacks.TensorBoard(
                str(work_dir / "logs"), write_graph=False, update_freq="epoch"))
        if save_best and validation_dataset is not None:
            all_callbacks.append(BestCheckpoint(
                str(work_dir / "best.keras"), monitor=monitor, mode=_monitor_mode(monitor)))
    if early_stopping_patience is not None and validation_dataset is not None:
        all_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=_monitor_mode(monitor),
            patience=early_stopping_patience, restore_best_weights=True))
    best_weights = None
    if validation_dataset is not None:
        best_weights = BestWeights(monitor, _monitor_mode(monitor))
        all_callbacks.append(best_weights)
    all_callbacks.extend(callbacks)
    if work_dir is not None:  # last: an epoch's backup follows its best.keras
        all_callbacks.append(CrashSafeBackup(work_dir / BACKUP_FOLDER, initial_epoch))

    def local_batch():
        return next(iter(dataset_fn(batch_size // strategy.num_replicas_in_sync, None)))

    started = time.perf_counter()
    try:
        with distribute.multi_worker_fit(model, strategy, local_batch):
            history = model.fit(
                dataset,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                initial_epoch=initial_epoch,
                validation_data=validation_dataset,
                callbacks=all_callbacks,
                verbose=verbose,
                shuffle=False,  # the pipeline shuffles
            )
    finally:
        model._initial_epoch = None  # (Keras' BackupAndRestore sets it); not for later fits
    train_seconds = time.perf_counter() - started
    epochs_run = len(history.history.get("loss", []))
    best_epoch = _restore_best(model, best_weights, work_dir)
    report = {
        "head": head.name,
        **distribute.describe(strategy),
        "precision": precision,
        "recipe": recipe,
        "jit_compile": bool(jit_compile or tpu_strategy),
        "mode": mode,
        **({"lora_rank": lora_rank} if mode == "lora" else {}),
        "trainable_parameters": parameters["trainable"],
        "total_parameters": parameters["total"],
        "train_examples": len(train_examples),
        "skipped_train_rows": getattr(train_examples, "skipped", 0),  # --skip-bad
        "skipped_validation_rows": getattr(validation_examples, "skipped", 0),
        "epochs": epochs,
        "resumed_from_epoch": initial_epoch,
        "epochs_run": epochs_run,
        "steps": int(model.optimizer.iterations.numpy()),
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "train_seconds": round(train_seconds, 1),
        "train_examples_per_second": round(
            epochs_run * steps_per_epoch * batch_size / max(train_seconds, 1e-9), 2),
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    }
    if work_dir is not None and (work_dir / "best.json").exists():
        report["best"] = _read_json(work_dir / "best.json")
    if best_epoch is not None:
        report["saved_epoch"] = best_epoch
    if validation_examples is not None:
        started = time.perf_counter()
        report["validation"] = model.evaluate_examples(validation_examples, batch_size=64)
        report["validation_seconds"] = round(time.perf_counter() - started, 1)
    if work_dir is not None:
        save_trained(model, report, work_dir)
        if not chief:
            shutil.rmtree(work_dir, ignore_errors=True)
    return model, report


def recipe_for(head, train_examples=None, **given):
    """The training schedule: each of `RECIPE_KEYS` as given, or the head's `recipe`
    value where it is None.

    When `epochs` is left unset and the training set is small, the recipe's epochs
    rise until the model sees at least `recipe["min_examples"]` examples (at most
    `MAX_RECIPE_EPOCHS`): a few thousand examples need more passes than sixty thousand
    (TREC, 4.9k questions: 0.938 dev accuracy after 2 epochs, 0.954 with 6).

    Args:
        head: the head, whose `recipe` gives the defaults.
        train_examples: the number of training examples, if known.
        **given: the caller's values of `RECIPE_KEYS`; None takes the recipe's.

    Example:
    ```python
    recipe_for(kerabert.heads.get("qa")(), epochs=1)["sequence_length"]  # 384
    recipe_for(kerabert.heads.get("sentiment")(), train_examples=5000)["epochs"]  # 5
    ```
    """
    recipe = {**Head.recipe, **head.recipe}  # a head may override only some keys
    chosen = {key: recipe[key] if given.get(key) is None else given[key]
              for key in RECIPE_KEYS}
    if given.get("epochs") is None and train_examples and recipe.get("min_examples"):
        needed = math.ceil(recipe["min_examples"] / train_examples)
        chosen["epochs"] = max(chosen["epochs"], min(needed, MAX_RECIPE_EPOCHS))
    return chosen


class BestWeights(keras.callbacks.Callback):
    """Keeps, in memory, the weights of the epoch with the best `monitor` value (so the
    model `train` returns and saves is the best epoch's, with or without an output
    folder).

    Args:
        monitor: the logged validation value, e.g. `"val_loss"`.
        mode: `"min"` or `"max"`.
    """

    def __init__(self, monitor="val_loss", mode="min"):
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.best, self.epoch, self.weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = self.best is None or (value < self.best if self.mode == "min"
                                       else value > self.best)
        if better:
            self.best, self.epoch = value, epoch + 1
            self.weights = [w.numpy() for w in self.model.weights]


def _restore_best(model, best_weights, work_dir):
    """Put the best epoch's weights back into `model`; returns that epoch (None: the
    model keeps its last weights). After a resume the in-memory record starts anew, so
    an earlier, better epoch saved as `best.keras` wins when its record says so."""
    if best_weights is None:
        return None
    record = _read_json(work_dir / "best.json") if work_dir is not None else None
    in_memory = best_weights.best
    if record and record.get("monitor") == best_weights.monitor and (
            in_memory is None or (record["value"] < in_memory if best_weights.mode == "min"
                                  else record["value"] > in_memory)):
        best = keras.saving.load_model(work_dir / "best.keras", compile=False)
        for target, source in zip(model.weights, best.weights):
            target.assign(source)
        return int(record["epoch"])
    if best_weights.weights is None:
        return None
    for variable, value in zip(model.weights, best_weights.weights):
        variable.assign(value)
    return best_weights.epoch


def save_trained(model, report, output_dir):
    """Write `model.keras` (without optimizer state) and `metrics.json` into
    `output_dir`, each written then renamed, and only then delete the backup: a kill
    at any point leaves either the backup to resume from or the finished outputs."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_model_file(model, output_dir / "model.keras")
    write_json_atomic(output_dir / "metrics.json", report, indent=2)
    remove_backup(output_dir)
    return output_dir / "model.keras"
