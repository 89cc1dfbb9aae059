"""The fit core: one way to run `model.fit` for `train`, `pretrain` and every `tune` trial.

A `FitRun` is created from a `kerabert.config.FitConfig` before any model is built and
owns what every training workflow needs the same way:

- seeds and determinism (`keras.utils.set_random_seed(seed)`, and with `deterministic`
  `tf.config.experimental.enable_op_determinism()`), before anything random is built;
- the `tf.distribute` strategy and the precision (`"auto"` resolved, a 16-bit precision
  this machine would abort on refused), entered together by `FitRun.scope()` while the
  model is built and compiled;
- the optimizer and schedule (`kerabert.optim.compile_task`, its variables built in the
  scope so that a restored backup loads into them);
- the output folder: the chief writes `output_dir`, other workers a scratch folder;
  resuming (`output_dir/backup`, a leftover backup without `resume` is an error);
- the data stream: an endless stream from `dataset_fn(per_replica_batch, context)`,
  distributed over the replicas and, on resume, skipped past the finished epochs;
- the callbacks (NaN stop, throughput, TensorBoard, best checkpoint and best weights,
  early stopping, crash-safe backup last), the `fit` call and the common report fields;
- the end: saving through the workflow's own `save(folder)`, then deleting the backup.

The workflows keep what is theirs: `kerabert.training.train` the head, its data, recipe
and validation scores; `kerabert.pretraining.pretrain` the corpus, the masked-LM head,
the held-out figures and the head warmup; `kerabert.tuning.tune` the search.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerabert import distribute
from kerabert.callbacks import (
    BACKUP_FOLDER,
    BestCheckpoint,
    BestWeights,
    CrashSafeBackup,
    ThroughputLogger,
    backup_epoch,
    monitor_mode,
    read_json,
    remove_backup,
    restore_best,
)
from kerabert.config import FitConfig
from kerabert.optim import compile_task
from kerabert.precision import check_precision, precision_policy, resolve_precision

DatasetFn = Callable[[int, Any], tf.data.Dataset]


def set_seeds(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras from `seed` (weights, dropout, masking,
    shuffles without a seed of their own); with `deterministic`, also make TensorFlow's
    kernels deterministic (process-wide, and it stays on)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@dataclass
class FitResult:
    """What one `FitRun.fit` measured."""

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    best_epoch: int | None


class FitRun:
    """One training run's strategy, precision, outputs and resume state.

    Args:
        config: the run's `FitConfig`.
        built_precision: the dtype policy of a backbone that is already built; with
            `precision="auto"` the run keeps it (its layers cannot change policy).

    Example:
    ```python
    run = FitRun(FitConfig(epochs=2, output_dir="runs/x", resume=True))
    with run.scope():
        model = build()            # under the strategy and the precision policy
        run.compile(model, total_steps=100, learning_rate=1e-4, warmup_ratio=0.1)
    result = run.fit(model, dataset_fn, epochs=2, steps_per_epoch=50)
    run.finish(lambda folder: save(model, folder))
    ```
    """

    def __init__(self, config: FitConfig, *, built_precision: str | None = None) -> None:
        self.config = config
        set_seeds(config.seed, config.deterministic)
        strategy = config.strategy
        if isinstance(strategy, str):
            strategy = distribute.get_strategy(strategy, tpu=config.tpu)
        self.strategy = strategy
        self.tpu = isinstance(strategy, tf.distribute.TPUStrategy)
        precision = config.precision
        if precision == "auto" and built_precision is not None:
            precision = built_precision
        self.precision = resolve_precision(precision, accelerator=self.tpu)
        check_precision(self.precision, accelerator=self.tpu)  # an error, not an abort
        self.jit_compile = bool(config.jit_compile or self.tpu)
        self.chief = distribute.is_chief(strategy)
        self.work_dir, self.initial_epoch = self._prepare_outputs()

    # -- outputs and resume ----------------------------------------------------------
    def _prepare_outputs(self) -> tuple[Path | None, int]:
        """The chief writes into output_dir; other workers into a scratch folder."""
        output_dir = self.config.output_dir
        if output_dir is None:
            if self.config.resume:
                raise ValueError("resume needs the output_dir of the interrupted run")
            return None, 0
        work_dir = Path(output_dir) if self.chief else Path(tempfile.mkdtemp(
            prefix=f"kerabert-worker{distribute.worker_index(self.strategy)}-"))
        work_dir.mkdir(parents=True, exist_ok=True)
        initial_epoch = backup_epoch(output_dir)
        if initial_epoch is not None and not self.config.resume:
            raise ValueError(
                f"{Path(output_dir) / BACKUP_FOLDER}: an interrupted run's backup is there; "
                "resume it (resume=True, --resume) or delete the folder"
            )
        if initial_epoch is not None and not self.chief:
            # Every worker must restore the same state: the chief's backup (CrashSafeBackup
            # reads only its own folder, here a new scratch folder). The chief cannot
            # rewrite it before this worker joins the first epoch's collectives.
            shutil.copytree(Path(output_dir) / BACKUP_FOLDER, work_dir / BACKUP_FOLDER)
        return work_dir, initial_epoch or 0

    # -- building ----------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build and compile the model in here: the precision policy and the strategy."""
        with precision_policy(self.precision), self.strategy.scope():
            yield

    def compile(self, model: Any, *, total_steps: int, learning_rate: float,
                warmup_ratio: float, weight_decay: float | None = None,
                layerwise: bool = True) -> Any:
        """Compile `model` with kerabert's optimizer on this run's schedule options and
        build the optimizer's variables (call it inside `scope()`)."""
        config = self.config
        compile_task(
            model, jit_compile=self.jit_compile,
            steps_per_execution=config.steps_per_execution, learning_rate=learning_rate,
            total_steps=total_steps, warmup_ratio=warmup_ratio,
            weight_decay=config.weight_decay if weight_decay is None else weight_decay,
            clipnorm=config.clipnorm,
            layerwise_lr_decay=config.layerwise_lr_decay if layerwise else None,
            sparse_updates=config.sparse_updates,
        )
        # Optimizer variables are created here, inside the scope (a restored backup
        # loads into them).
        model.optimizer.build(model.trainable_variables)
        return model

    # -- data --------------------------------------------------------------------------
    def distribute(self, dataset_fn: DatasetFn, *, batch_size: int,
                   steps_per_epoch: int, skip: bool = True) -> tuple[Any, Callable[[], Any]]:
        """`(dataset for fit, one local batch)` from an endless per-pipeline
        `dataset_fn(per_replica_batch, input_context)`; resuming, each pipeline skips
        the batches the finished epochs consumed (the same stream: the same batches)."""
        strategy = self.strategy
        initial_epoch = self.initial_epoch if skip else 0

        def pipeline(per_replica_batch, context):
            pipelines = context.num_input_pipelines if context else 1
            dataset = dataset_fn(per_replica_batch, context)
            batches_per_step = strategy.num_replicas_in_sync // pipelines
            skipped = initial_epoch * steps_per_epoch * batches_per_step
            return dataset.skip(skipped) if skipped else dataset

        def local_batch():
            return next(iter(pipeline(batch_size // strategy.num_replicas_in_sync, None)))

        return distribute.distribute_dataset(strategy, pipeline, batch_size), local_batch

    # -- callbacks and fit -------------------------------------------------------------
    def callbacks(self, *, batch_size: int, validation: bool,
                  extra: Sequence[Any] = (), backup: bool = True) -> tuple[list, Any]:
        """`(callbacks, best-weights callback or None)` in kerabert's order: NaN stop,
        throughput, TensorBoard, best checkpoint, early stopping, best weights, the
        caller's, and the crash-safe backup last (an epoch's backup follows its
        best.keras)."""
        config, work_dir = self.config, self.work_dir
        mode = monitor_mode(config.monitor)
        found: list[Any] = [keras.callbacks.TerminateOnNaN(), ThroughputLogger(batch_size)]
        if work_dir is not None and backup:
            if config.tensorboard:
                found.append(keras.callbacks.TensorBoard(
                    str(work_dir / "logs"), write_graph=False, update_freq="epoch"))
            if config.save_best and validation:
                found.append(BestCheckpoint(str(work_dir / "best.keras"),
                                            monitor=config.monitor, mode=mode))
        if config.early_stopping_patience is not None and validation:
            found.append(keras.callbacks.EarlyStopping(
                monitor=config.monitor, mode=mode,
                patience=config.early_stopping_patience, restore_best_weights=True))
        best_weights = None
        if validation:
            best_weights = BestWeights(config.monitor, mode)
            found.append(best_weights)
        found.extend(extra)
        if work_dir is not None and backup:
            found.append(CrashSafeBackup(work_dir / BACKUP_FOLDER, self.initial_epoch))
        return found, best_weights

    def fit(self, model: Any, dataset_fn: DatasetFn, *, epochs: int, steps_per_epoch: int,
            batch_size: int | None = None, validation_data: Any = None,
            callbacks: Sequence[Any] | None = None, backup: bool = True,
            verbose: Any = None) -> FitResult:
        """Fit `model` (compiled in `scope()`) on the endless stream of `dataset_fn`,
        `epochs` epochs of `steps_per_epoch` steps, with this run's callbacks (plus
        `callbacks`; default the config's). `backup=False`: an auxiliary fit (no
        backup, logs, best model or resume; e.g. pretraining's head warmup)."""
        config = self.config
        batch_size = batch_size or config.batch_size
        dataset, local_batch = self.distribute(dataset_fn, batch_size=batch_size,
                                               steps_per_epoch=steps_per_epoch, skip=backup)
        extra = config.callbacks if callbacks is None else callbacks
        all_callbacks, best_weights = self.callbacks(
            batch_size=batch_size, validation=validation_data is not None, extra=extra,
            backup=backup)
        initial_epoch = self.initial_epoch if backup else 0
        started = time.perf_counter()
        try:
            with distribute.multi_worker_fit(model, self.strategy, local_batch):
                history = model.fit(
                    dataset,
                    epochs=epochs,
                    steps_per_epoch=steps_per_epoch,
                    initial_epoch=initial_epoch,
                    validation_data=validation_data,
                    callbacks=all_callbacks,
                    verbose=config.verbose if verbose is None else verbose,
                    shuffle=False,  # the pipeline shuffles
                )
        finally:
            model._initial_epoch = None  # (Keras' BackupAndRestore sets it); not for later fits
        seconds = time.perf_counter() - started
        best_epoch = restore_best(model, best_weights, self.work_dir if backup else None)
        return FitResult(
            history={k: [float(x) for x in v] for k, v in history.history.items()},
            seconds=seconds,
            epochs_run=len(history.history.get("loss", [])),
            best_epoch=best_epoch,
        )

    # -- report and end ----------------------------------------------------------------
    def report(self, model: Any, result: FitResult, *, epochs: int, steps_per_epoch: int,
               batch_size: int | None = None) -> dict[str, Any]:
        """The report fields every workflow shares (strategy, precision, steps, speed,
        history, best epoch)."""
        batch_size = batch_size or self.config.batch_size
        report: dict[str, Any] = {
            **distribute.describe(self.strategy),
            "precision": self.precision,
            "jit_compile": self.jit_compile,
            "epochs": epochs,
            "resumed_from_epoch": self.initial_epoch,
            "epochs_run": result.epochs_run,
            "steps": int(model.optimizer.iterations.numpy()),
            "steps_per_epoch": steps_per_epoch,
            "batch_size": batch_size,
            "train_seconds": round(result.seconds, 1),
            "train_examples_per_second": round(
                result.epochs_run * steps_per_epoch * batch_size / max(result.seconds, 1e-9),
                2),
            "history": result.history,
        }
        if self.config.deterministic:
            report["deterministic"] = True
        if self.work_dir is not None and (self.work_dir / "best.json").exists():
            report["best"] = read_json(self.work_dir / "best.json")
        if result.best_epoch is not None:
            report["saved_epoch"] = result.best_epoch
        return report

    def finish(self, save: Callable[[Path], Any]) -> None:
        """Save the run's outputs with `save(folder)`, then delete the backup (a kill in
        between leaves the backup to resume from); a non-chief worker's scratch folder
        is removed."""
        if self.work_dir is None:
            return
        save(self.work_dir)
        remove_backup(self.work_dir)
        if not self.chief:
            shutil.rmtree(self.work_dir, ignore_errors=True)
