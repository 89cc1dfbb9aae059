"""Checks of user-given values, run before any heavy work, and the output folder rules.

Every check raises a `ValueError` subclass whose message says what is wrong and how to
fix it, so the Python API and the command line (which prints it as one line, exit
status 2) give the same error. `checked_training` wraps `kerabert.train`: it checks
the options, refuses an output folder that holds another run, and removes what a failed
run created.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
from pathlib import Path


class OptionError(ValueError):
    """An option value kerabert cannot use; the message names the option and a fix."""


class OutputDirError(ValueError):
    """The output folder holds another run (or an interrupted one to resume)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the path and what is wrong.
    (Also `kerabert.CheckpointError` and `kerabert.backbone.CheckpointError`.)"""


def _flag(name):
    return "--" + name.replace("_", "-")


def _fail(name, value, rule, fix):
    raise OptionError(f"{_flag(name)} {value!r}: {rule} ({fix}; Python: {name}=)")


def check_positive_int(name, value, *, optional=False, minimum=1):
    """`value` as an int >= `minimum` (None passes when `optional`)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        _fail(name, value, "must be a whole number", f"give {minimum} or more")
    if value < minimum:
        _fail(name, value, f"must be at least {minimum}", f"give {minimum} or more")
    return int(value)


def check_number(name, value, *, low=None, high=None, low_open=False, optional=False):
    """`value` as a finite float in `[low, high]` (`(low, high]` with `low_open`)."""
    if value is None and optional:
        return None
    bounds = (f"{'(' if low_open else '['}{'-inf' if low is None else low}, "
              f"{'inf' if high is None else high}]")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(name, value, "must be a finite number", f"give a number in {bounds}")
    if (low is not None and (value <= low if low_open else value < low)) or (
            high is not None and value > high):
        _fail(name, value, f"must be in {bounds}", f"give a number in {bounds}")
    return float(value)


def check_sequence_length(sequence_length, max_positions=None):
    """A packed length the backbone can embed: at least 3 (`[CLS] token [SEP]`) and at
    most its `max_positions` position embeddings."""
    check_positive_int("sequence_length", sequence_length, minimum=3)
    if max_positions is not None and sequence_length > max_positions:
        raise OptionError(
            f"--sequence-length {sequence_length}: the backbone has only {max_positions} "
            f"positions (give {max_positions} or less; Python: sequence_length=)")
    return int(sequence_length)


from kerabert.config import MODES, PRECISION_OPTIONS  # noqa: E402


def validate_training_options(options):
    """Check `kerabert.train`'s keyword values (a dict of them); raises `OptionError`."""
    get = options.get
    # None (sequence length, epochs, learning rate, warmup): the head's recipe.
    if get("sequence_length") is not None:
        check_sequence_length(get("sequence_length"))
    check_positive_int("batch_size", get("batch_size", 32))
    check_positive_int("epochs", get("epochs"), optional=True)
    check_positive_int("steps_per_epoch", get("steps_per_epoch"), optional=True)
    check_positive_int("steps_per_execution", get("steps_per_execution", 1))
    check_positive_int("max_train_examples", get("max_train_examples"), optional=True)
    check_positive_int("max_validation_examples", get("max_validation_examples"),
                       optional=True)
    check_positive_int("lora_rank", get("lora_rank", 8))
    check_positive_int("early_stopping_patience", get("early_stopping_patience"),
                       optional=True, minimum=0)
    check_number("learning_rate", get("learning_rate"), low=0, low_open=True, optional=True)
    check_number("warmup_ratio", get("warmup_ratio"), low=0, high=1, optional=True)
    check_number("weight_decay", get("weight_decay", 0.01), low=0)
    check_number("clipnorm", get("clipnorm", 1.0), low=0, optional=True)
    check_number("layerwise_lr_decay", get("layerwise_lr_decay"), low=0, high=1,
                 low_open=True, optional=True)
    precision = get("precision", "auto")
    if isinstance(precision, str) and precision not in PRECISION_OPTIONS:
        raise OptionError(f"--precision {precision!r}: unknown precision (use one of "
                          f"{', '.join(PRECISION_OPTIONS)}; Python: precision=)")
    if get("mode", "full") not in MODES:
        raise OptionError(f"--mode {get('mode')!r}: unknown mode (use one of "
                          f"{', '.join(MODES)}; Python: mode=)")


def prepare_output_dir(output_dir, *, resume=False, overwrite=False):
    """Check that a run may write into `output_dir`, clearing it with `overwrite`.

    A folder with files of another run is refused (its `best.keras`, `metrics.json`
    and logs would mix with the new run's) unless `overwrite` (delete them first) or
    `resume` (continue the run whose backup is there). A leftover backup without
    `resume` is refused even with `overwrite` off, naming `--resume`.

    Returns:
        True when the folder did not exist or was empty (a failed run may remove it).
    """
    from kerabert.callbacks import BACKUP_FOLDER

    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{path}: exists and is not a folder (give a folder for --output)")
    entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if not entries:
        return True
    if resume:
        return False
    if (path / BACKUP_FOLDER).exists() and not overwrite:
        raise OutputDirError(
            f"{path / BACKUP_FOLDER}: an interrupted run's backup is there; resume it "
            "(resume=True, --resume), or start again with --overwrite (overwrite=True)")
    if not overwrite:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise OutputDirError(
            f"{path}: the folder is not empty ({shown}); a new run would mix with it "
            "(choose a new --output, or --overwrite to replace it, or --resume to "
            "continue an interrupted run)")
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


def _writes_outputs(strategy):
    """Whether this process is the one that writes `output_dir` (the chief), judged
    before the strategy exists: from `TF_CONFIG`, as `kerabert.distribute.is_chief`."""
    if strategy is not None and not isinstance(strategy, str):
        from kerabert.distribute import is_chief

        return is_chief(strategy)
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError:
        return True
    task = config.get("task") or {}
    kind, index = task.get("type"), int(task.get("index") or 0)
    if kind in (None, "chief"):
        return True
    return kind == "worker" and index == 0 and not (config.get("cluster") or {}).get("chief")


def checked_training(train):
    """Decorate `kerabert.train(head, train_data, config=None, **options)`: merge the
    keyword options into its `TrainConfig` (the ones that are no config field are head
    options), check them first, take `overwrite=False`, and remove the output folder a
    failed run created (or emptied), unless it holds a backup to resume from (a run that
    failed after an epoch: `--resume` continues it).
    """
    from kerabert.config import TrainConfig

    @functools.wraps(train)
    def wrapper(head, train_data, config=None, *, validation_data=None, overwrite=False,
                **options):
        config, head_options = TrainConfig.split(config, options)
        validate_training_options(config.to_dict())
        output_dir = config.output_dir

        def run():
            return train(head, train_data, config, validation_data=validation_data,
                         **head_options)

        if output_dir is None or not _writes_outputs(config.strategy):
            return run()  # a non-chief worker writes to scratch
        fresh = prepare_output_dir(output_dir, resume=config.resume, overwrite=overwrite)
        try:
            return run()
        except BaseException:
            from kerabert.callbacks import backup_epoch

            if fresh and backup_epoch(output_dir) is None:
                shutil.rmtree(output_dir, ignore_errors=True)
            raise

    return wrapper
