"""Hyperparameter search with keras-tuner over a head's own search space.

Each trial fine-tunes with `kerabert.train` on hyperparameters drawn from
`head.search_space(hp)` (learning rate, batch size, epochs, warmup, dropout, ...; plus
the LoRA rank in mode `"lora"`) and is scored with the head's own validation metric
(`head.score`: accuracy, entity F1, SQuAD F1, ...). The best model is saved, a results
table is printed, and trials that fail are reported with their error; keras-tuner on
its own records a failed trial and moves on without a word.

Example:
```python
result = kerabert.tuning.tune("sentiment", "train.tsv", "dev.tsv", tuner="bayesian",
                              max_trials=8, output_dir="runs/tune")
print(result.table())
```
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kerabert.heads.base import Head

TUNERS = ("random", "bayesian", "hyperband")
# Which of a head's `score` values to maximize, in order of preference.
OBJECTIVE_PREFERENCE = ("f1", "accuracy", "micro_f1", "macro_f1", "exact_match")
TRAINING_HYPERPARAMETERS = ("learning_rate", "batch_size", "epochs", "warmup_ratio",
                            "weight_decay", "lora_rank", "layerwise_lr_decay")


def objective_name(head, scores):
    """The head's validation metric to maximize: `head.objective` if the head defines
    one, else the first of `OBJECTIVE_PREFERENCE` in its scores."""
    preferred = getattr(head, "objective", None)
    if preferred:
        return preferred
    for name in OBJECTIVE_PREFERENCE:
        if name in scores:
            return name
    numeric = [k for k, v in scores.items() if isinstance(v, float)]
    if not numeric:
        raise ValueError(f"head {head.name!r} scores no metric to tune on: {scores}")
    return numeric[0]


@dataclass
class TrialResult:
    trial_id: str
    status: str
    hyperparameters: dict
    score: float | None = None
    scores: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class TuningResult:
    """What a search found: every trial, the best one, and where its model is."""

    objective: str
    trials: list
    best_model_path: str | None

    @property
    def best(self):
        done = [t for t in self.trials if t.score is not None]
        return max(done, key=lambda t: t.score) if done else None

    @property
    def failed(self):
        return [t for t in self.trials if t.status != "COMPLETED"]

    def table(self):
        """A text table of all trials, best first, failed ones last with their error."""
        names = sorted({k for t in self.trials for k in t.hyperparameters})
        header = ["trial", "status", self.objective, "seconds", *names]
        rows = []
        ordered = sorted(self.trials, key=lambda t: (t.score is None, -(t.score or 0.0)))
        for t in ordered:
            rows.append([
                t.trial_id, t.status,
                "" if t.score is None else f"{t.score:.4f}", f"{t.seconds:.0f}",
                *[_short(t.hyperparameters.get(n, "")) for n in names],
            ])
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for t in ordered:
            if t.error:
                lines.append(f"trial {t.trial_id} failed: {t.error}")
        return "\n".join(lines)

    def to_dict(self):
        return {
            "objective": self.objective,
            "best_model": self.best_model_path,
            "best": None if self.best is None else self.best.__dict__,
            "trials": [t.__dict__ for t in self.trials],
        }


def _last_line(message):
    """The exception line of a traceback keras-tuner recorded."""
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


def _short(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _make_oracle(kt, tuner, objective, max_trials, max_epochs, seed, hyperparameters):
    options = dict(objective=kt.Objective(objective, direction="max"), seed=seed,
                   hyperparameters=hyperparameters)
    if tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **options)
    if tuner == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials, **options)
    if tuner == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=max_epochs, factor=3, **options)
    raise ValueError(f"tuner must be one of {TUNERS}, got {tuner!r}")


def tune(head: str | Head, train_data: Any, validation_data: Any, *, tuner: str = "random",
         max_trials: int = 10, max_epochs: int = 3, backbone: Any = "all-minilm-l6-v2",
         output_dir: str | os.PathLike = "runs/tune", objective: str | None = None,
         mode: str = "full", overwrite: bool = True, seed: int = 0,
         read_options: dict[str, Any] | None = None, max_train_examples: int | None = None,
         max_validation_examples: int | None = None, verbose: int = 1,
         **train_options: Any) -> TuningResult:
    """Search a head's hyperparameters with keras-tuner; save the best model.

    Args:
        head: a head name or `Head` instance.
        train_data, validation_data: like `kerabert.train`'s (validation is required:
            it gives the objective).
        tuner: `"random"`, `"bayesian"` or `"hyperband"` (Hyperband chooses the epochs,
            up to `max_epochs`; every trial trains from scratch).
        max_trials: trials of random and Bayesian search.
        max_epochs: Hyperband's largest epoch budget.
        backbone: a `load_backbone` spec.
        output_dir: keras-tuner's state (`output_dir/tuner`), the best model
            (`output_dir/best/model.keras`) and `results.json`.
        objective: the `head.score` value to maximize (default: `objective_name`).
        mode: fine-tuning mode; `"lora"` adds `lora_rank` to the search space.
        overwrite: start a new search (else continue the one in `output_dir`).
        seed: the seed of the oracle and of every trial's training.
        read_options, max_train_examples, max_validation_examples: as in `train`.
        verbose: 0 silent, 1 one line per trial, 2 also Keras' per-epoch lines.
        **train_options: fixed `kerabert.train` options (`TrainConfig` fields such as
            sequence_length, precision, strategy, deterministic...; every trial fits
            through `kerabert.train` and so the fit core, `kerabert.fitting`).
            One the search space also names (`epochs=1`, `batch_size=8`, `dropout=0.1`)
            is pinned to that value instead of searched.

    Returns:
        A `TuningResult`; `.table()` is the results table.
    """
    import keras
    import keras_tuner as kt

    from kerabert.data import load_examples
    from kerabert.config import TrainConfig
    from kerabert.precision import check_precision
    from kerabert.task import resolve_head
    from kerabert.training import save_trained, train

    # Once, up front: keras-tuner would otherwise record it as every trial's failure.
    check_precision(train_options.get("precision", TrainConfig.precision),
                    accelerator=train_options.get("strategy") == "tpu")
    task_head: Head = resolve_head(head)
    read_options = read_options or {}
    train_examples = load_examples(task_head, train_data, **read_options).head(max_train_examples)
    validation_examples = load_examples(task_head, validation_data, **read_options).head(
        max_validation_examples
    )
    task_head.adapt(train_examples)
    output_dir = Path(output_dir)
    best_dir = output_dir / "best"
    # The oracle maximizes "score"; which head metric that is (`objective`) is known
    # from the first trial's scores when not given.
    state: dict[str, Any] = {"best": None, "objective": objective}
    results = []
    head_config = task_head.get_config()

    class HeadSearchSpace(kt.HyperModel):
        """The head's search space (plus `lora_rank` in mode "lora"); `build` returns
        the trial's values as a dict, which `run_trial` trains with."""

        def build(self, hp):
            space = dict(task_head.search_space(hp))
            if mode == "lora" and "lora_rank" not in space:
                space["lora_rank"] = hp.Choice("lora_rank", [4, 8, 16])
            if "tuner/epochs" in hp.values:  # Hyperband's epoch budget
                space["epochs"] = hp.values["tuner/epochs"]
            return space

    # A train option that the search space also names is pinned (hp.Fixed), so the
    # head's `hp.Choice(name, ...)` returns it and the table shows it.
    pinned = kt.HyperParameters()
    for name, value in train_options.items():
        if name in TRAINING_HYPERPARAMETERS or name in head_config:
            pinned.Fixed(name, value)

    class TaskTuner(kt.engine.base_tuner.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):  # search()'s verbose comes too
            hp = trial.hyperparameters
            space = self.hypermodel.build(hp)
            trial_head = type(task_head).from_config(
                {**head_config, **{k: v for k, v in space.items() if k in head_config}})
            options = {**train_options,
                       **{k: v for k, v in space.items() if k in TRAINING_HYPERPARAMETERS}}
            for name in head_config:
                options.pop(name, None)
            started = time.perf_counter()
            values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
            record = TrialResult(trial.trial_id, "RUNNING", {**values, **space})
            results.append(record)
            try:
                model, report = train(
                    trial_head, train_examples, backbone=backbone,
                    validation_data=validation_examples, mode=mode, seed=seed,
                    verbose=2 if verbose >= 2 else 0, **options,
                )
                scores = report["validation"]
                state["objective"] = state["objective"] or objective_name(task_head, scores)
                if state["objective"] not in scores:
                    raise KeyError(f"head {task_head.name!r} did not score "
                                   f"{state['objective']!r}: {sorted(scores)}")
            except Exception as e:
                record.status = "FAILED"
                record.seconds = time.perf_counter() - started
                record.error = f"{type(e).__name__}: {e}"
                record.__dict__["traceback"] = traceback.format_exc()  # results.json
                if verbose:
                    print(f"trial {trial.trial_id} FAILED: {record.error}", flush=True)
                keras.backend.clear_session()
                # FailedTrialError: keras-tuner marks the trial failed (no retry).
                raise kt.errors.FailedTrialError(record.error) from e
            record.status = "COMPLETED"
            record.score = float(scores[state["objective"]])
            record.scores = scores
            record.seconds = time.perf_counter() - started
            if state["best"] is None or record.score > state["best"]:
                state["best"] = record.score
                report["hyperparameters"] = record.hyperparameters
                save_trained(model, report, best_dir)
            del model
            keras.backend.clear_session()  # free the trial's graphs and weights
            if verbose:
                print(f"trial {trial.trial_id}: {state['objective']}={record.score:.4f} "
                      f"{record.hyperparameters} ({record.seconds:.0f} s)", flush=True)
            return {"score": record.score}

    if overwrite and best_dir.exists():
        shutil.rmtree(best_dir)
    oracle = _make_oracle(kt, tuner, "score", max_trials, max_epochs, seed, pinned)
    search = TaskTuner(oracle, hypermodel=HeadSearchSpace(), directory=str(output_dir),
                       project_name="tuner", overwrite=overwrite)
    stopped = None
    try:
        search.search(verbose=0)  # kerabert prints its own line per trial
    except RuntimeError as e:  # keras-tuner stops after 3 failed trials in a row
        stopped = str(e).strip().splitlines()[0]
    result = TuningResult(
        state["objective"] or "score", results,
        str(best_dir / "model.keras") if state["best"] is not None else None,
    )
    # Trials keras-tuner ended without running them here (e.g. on a retry) are
    # reported from its own records.
    seen = {t.trial_id for t in results}
    for trial in search.oracle.trials.values():
        if trial.trial_id not in seen and trial.status != "COMPLETED":
            result.trials.append(TrialResult(trial.trial_id, str(trial.status),
                                             dict(trial.hyperparameters.values),
                                             error=_last_line(trial.message)))
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / "results.json", "w", encoding="utf-8") as f:
        json.dump(result.to_dict(), f, indent=2, default=str)
    if result.best is None:
        errors = "; ".join(f"trial {t.trial_id}: {t.error}" for t in result.failed)
        raise RuntimeError(f"every tuning trial failed: {errors or 'no trial ran'}")
    if stopped and verbose:
        print(f"search stopped early: {stopped}", flush=True)
    return result
