"""Crash-safe training state: end-of-epoch backups a SIGKILL cannot corrupt, and the
file writes that go with them.

Keras' `BackupAndRestore` rewrites `latest.weights.h5` in place and then its metadata:
a kill in between leaves a corrupt file, or weights one epoch ahead of the metadata.
`CrashSafeBackup` writes each epoch's state as one unit instead:

    backup/epoch-000003/model.weights.h5   model + optimizer variables
    backup/epoch-000003/state.json         epoch, step, the weights' size and SHA-256

The folder is written under a hidden temporary name (`.partial-...`) and renamed into
place when complete; `state.json` is written last and names the weights' checksum, so
a backup is either whole or ignored. The newest valid backup is the one restored; the
previous one is kept until the next is complete, so a corrupt newest backup (a bit
flip, a truncated copy) falls back to it. See docs/training.md.

Also the other callbacks of the fit core (`kerabert.fitting`): `ThroughputLogger`
(examples per second), `BestCheckpoint` (`best.keras` + `best.json`) and `BestWeights`
with `restore_best` (the returned model is the best epoch's), and `save_trained`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import keras

BACKUP_FOLDER = "backup"
WEIGHTS_FILE = "model.weights.h5"
STATE_FILE = "state.json"
_EPOCH = re.compile(r"^epoch-([0-9]+)$")
KEEP = 2  # the newest backup and the one before it (the fallback if it is corrupt)


class BackupError(ValueError):
    """A backup that cannot be restored."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path):
    # Durable against power loss too; a SIGKILL alone needs only the renames.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path, obj, **dump_options):
    """Write JSON to `path` via a temporary sibling and a rename (never half written)."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                     dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, **dump_options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _without_optimizer(model):
    # Keras saves `model.optimizer`'s variables with the model; the compile config
    # (loss, metrics, optimizer settings) stays, so a loaded model is compiled afresh.
    optimizer = model.__dict__.get("optimizer")
    if optimizer is None:
        yield
        return
    object.__setattr__(model, "optimizer", None)
    try:
        yield
    finally:
        object.__setattr__(model, "optimizer", optimizer)


def save_model_file(model, path, include_optimizer=False):
    """`model.save(path)` written to a temporary sibling and renamed into place (an
    interrupted save leaves the previous file whole), by default without the
    optimizer's state (a third of a fine-tuned BERT file is AdamW moments, only needed
    to resume, which the backup does).
    """
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with contextlib.nullcontext() if include_optimizer else _without_optimizer(model):
            model.save(partial)
        _fsync(partial)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return path


def _read_state(folder):
    """The state of a whole, unaltered backup folder, else None."""
    try:
        with open(folder / STATE_FILE, encoding="utf-8") as f:
            state = json.load(f)
        weights = folder / WEIGHTS_FILE
        if (os.path.getsize(weights) != state["weights_bytes"]
                or _sha256(weights) != state["weights_sha256"]):
            return None
        return state if int(state["epoch"]) == int(_EPOCH.match(folder.name)[1]) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def backups(backup_dir):
    """`[(epoch, folder)]` of the backup folders in `backup_dir`, newest first (valid
    or not)."""
    backup_dir = Path(backup_dir)
    if not backup_dir.is_dir():
        return []
    found = [(int(m[1]), p) for p in backup_dir.iterdir() if (m := _EPOCH.match(p.name))]
    return sorted(found, reverse=True)


def latest_backup(backup_dir):
    """`(epoch, folder)` of the newest valid backup in `backup_dir`, or None."""
    for epoch, folder in backups(backup_dir):
        if _read_state(folder) is not None:
            return epoch, folder
    return None


def backup_epoch(output_dir):
    """The epoch an interrupted run in `output_dir` can resume from (None: no valid
    backup; a corrupt newest backup gives the epoch of the previous one)."""
    found = latest_backup(Path(output_dir) / BACKUP_FOLDER)
    return None if found is None else found[0]


def remove_backup(output_dir):
    """Delete `output_dir/backup` once the run's outputs are saved. Renamed away
    first, so that a kill while deleting leaves no half-deleted backup to resume."""
    backup_dir = Path(output_dir) / BACKUP_FOLDER
    if not backup_dir.exists():
        return
    doomed = Path(tempfile.mkdtemp(prefix=".backup-deleted-", dir=backup_dir.parent))
    os.replace(backup_dir, doomed / BACKUP_FOLDER)
    shutil.rmtree(doomed, ignore_errors=True)


class CrashSafeBackup(keras.callbacks.Callback):
    """Back up the model and optimizer at the end of every epoch, atomically, and
    restore the newest valid backup when training begins.

    Args:
        backup_dir: the backup folder (`output_dir/backup`).
        epoch: the epoch to restore (what `backup_epoch` found, so that the data
            stream was skipped to it); None or 0: start afresh.

    Example:
    ```python
    epoch = backup_epoch(output_dir) or 0
    model.fit(data, epochs=4, initial_epoch=epoch,
              callbacks=[CrashSafeBackup(Path(output_dir) / "backup", epoch)])
    ```
    """

    def __init__(self, backup_dir, epoch=None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.epoch = epoch or 0

    def on_train_begin(self, logs=None):
        if not self.epoch:
            return
        folder = self.backup_dir / f"epoch-{self.epoch:06d}"
        if _read_state(folder) is None:
            raise BackupError(f"{folder}: the backup to resume from is gone or corrupt")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(folder / WEIGHTS_FILE)
        except Exception as e:  # a checksum-valid file written by another model
            raise BackupError(f"{folder}: cannot restore it into this model ({e}); "
                              "resume with the options of the interrupted run") from e

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch + 1)

    def save(self, epoch):
        """Write the backup of the state after `epoch` epochs."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        final = self.backup_dir / f"epoch-{epoch:06d}"
        partial = Path(tempfile.mkdtemp(prefix=f".partial-epoch-{epoch:06d}-",
                                        dir=self.backup_dir))
        try:
            weights = partial / WEIGHTS_FILE
            self.model.save_weights(weights)
            _fsync(weights)
            write_json_atomic(partial / STATE_FILE, {
                "epoch": epoch,
                "steps": int(self.model.optimizer.iterations.numpy())
                if self.model.optimizer is not None else None,
                "weights_bytes": os.path.getsize(weights),
                "weights_sha256": _sha256(weights),
            })
            if final.exists():  # a stale backup of this epoch (a replayed epoch)
                shutil.rmtree(final)
            os.rename(partial, final)
            _fsync(self.backup_dir)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        self._prune(keep_from=epoch)

    def _prune(self, keep_from):
        kept = 0
        for epoch, folder in backups(self.backup_dir):
            if epoch > keep_from:  # from a run that got further (should not happen)
                continue
            if kept < KEEP and _read_state(folder) is not None:
                kept += 1
                continue
            shutil.rmtree(folder, ignore_errors=True)
        for leftover in self.backup_dir.glob(".partial-*"):  # from killed runs
            shutil.rmtree(leftover, ignore_errors=True)


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
        previous = read_json(self.record)
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


def read_json(path):
    """A JSON file's content, or None when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def monitor_mode(monitor):
    """`"min"` for a loss, `"max"` for any other monitored value."""
    return "min" if "loss" in monitor else "max"


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


def restore_best(model, best_weights, work_dir):
    """Put the best epoch's weights back into `model`; returns that epoch (None: the
    model keeps its last weights). After a resume the in-memory record starts anew, so
    an earlier, better epoch saved as `best.keras` wins when its record says so."""
    if best_weights is None:
        return None
    record = read_json(work_dir / "best.json") if work_dir is not None else None
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
