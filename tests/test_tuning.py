"""keras-tuner search (`kerabert.tuning.tune`, `kerabert tune`) on a tiny model: random
search with a deliberately failing trial, Bayesian search from the command line, and
Hyperband's epoch budget."""

from __future__ import annotations

import json

import pytest

from kerabert.heads.classification import SentimentHead
from tests.training_helpers import save_tiny_checkpoint, tiny_data

FIXED = {"sequence_length": 32, "epochs": 1, "batch_size": 8, "tensorboard": False}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


class FailsOnHighDropout(SentimentHead):
    """A sentiment head whose search space has one value that cannot build."""

    def search_space(self, hp):
        return {"dropout": hp.Choice("dropout", [0.0, 0.1, 0.9]),
                "learning_rate": hp.Choice("learning_rate", [1e-3])}

    def build_outputs(self, backbone_outputs, inputs):
        if self.dropout > 0.5:
            raise ValueError("deliberate failure: dropout too high")
        return super().build_outputs(backbone_outputs, inputs)


@pytest.mark.slow
def test_random_search_reports_failed_trial_and_saves_best(tiny_checkpoint, tmp_path, capsys):
    from kerabert.task import load_model
    from kerabert.tuning import tune

    result = tune(FailsOnHighDropout(), tiny_data(32), tiny_data(16, seed=1), tuner="random",
                  max_trials=3, backbone=tiny_checkpoint, output_dir=tmp_path / "tune",
                  **FIXED)
    printed = capsys.readouterr().out
    assert result.objective == "accuracy"
    # All three dropout values were tried; the one that cannot build is reported.
    assert sorted(t.hyperparameters["dropout"] for t in result.trials) == [0.0, 0.1, 0.9]
    [failed] = result.failed
    assert failed.status == "FAILED" and failed.hyperparameters["dropout"] == 0.9
    assert "deliberate failure" in failed.error
    assert "FAILED: ValueError: deliberate failure" in printed
    done = [t for t in result.trials if t.status == "COMPLETED"]
    assert len(done) == 2
    for trial in done:  # the objective is the head's accuracy: correct / examples
        assert trial.score == trial.scores["accuracy"]
        correct = trial.score * trial.scores["examples"]
        assert trial.scores["examples"] == 16 and abs(correct - round(correct)) < 1e-6
    assert result.best.score == max(t.score for t in done)
    # Pinned train options show up as fixed hyperparameters.
    assert all(t.hyperparameters["epochs"] == 1 for t in result.trials)

    table = result.table().splitlines()
    assert table[0].split()[:4] == ["trial", "status", "accuracy", "seconds"]
    assert [line.split()[1] for line in table[2:5]] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert table[5].startswith(f"trial {failed.trial_id} failed: ValueError: deliberate")

    saved = json.loads((tmp_path / "tune" / "results.json").read_text())
    assert [t["status"] for t in saved["trials"]].count("FAILED") == 1
    assert saved["best"]["score"] == result.best.score
    # The best model reloads, predicts, and scores what its trial scored.
    model = load_model(result.best_model_path)
    assert model.head.dropout == result.best.hyperparameters["dropout"]
    validation = tiny_data(16, seed=1)
    assert model.evaluate_examples(validation)["accuracy"] == pytest.approx(result.best.score)
    best_report = json.loads((tmp_path / "tune" / "best" / "metrics.json").read_text())
    assert best_report["hyperparameters"] == result.best.hyperparameters


@pytest.mark.slow
def test_cli_bayesian_search_prints_table(tiny_checkpoint, tmp_path, capsys):
    from kerabert.cli import main

    for name, data in (("train", tiny_data(32)), ("dev", tiny_data(16, seed=1))):
        rows = "".join(f"{t}\t{l}\n" for t, l in zip(data["text"], data["label"]))
        (tmp_path / f"{name}.tsv").write_text("sentence\tlabel\n" + rows)
    code = main(["tune", "--head", "sentiment", "--tuner", "bayesian", "--max-trials", "2",
                 "--train", str(tmp_path / "train.tsv"),
                 "--validation", str(tmp_path / "dev.tsv"),
                 "--backbone", tiny_checkpoint, "--output", str(tmp_path / "out"),
                 "--sequence-length", "32", "--train-option", "epochs=1",
                 "--train-option", "batch_size=8", "--train-option", "tensorboard=false"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # Progress (one line per trial) and the table on stderr; the JSON summary on stdout.
    lines = captured.err.splitlines()
    assert sum(line.startswith("trial ") and "accuracy=" in line for line in lines) == 2
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "status"])
    assert lines[header].split()[2] == "accuracy"
    rows = lines[header + 2:header + 4]
    assert [r.split()[1] for r in rows] == ["COMPLETED", "COMPLETED"]
    summary = json.loads(next(line for line in captured.out.splitlines()
                              if line.startswith("{")))
    assert summary["failed_trials"] == 0 and summary["objective"] == "accuracy"
    assert set(summary["best_hyperparameters"]) >= {"learning_rate", "dropout", "epochs"}
    assert summary["best_model"].endswith("best/model.keras")
    assert (tmp_path / "out" / "best" / "model.keras").is_file()


@pytest.mark.slow
def test_hyperband_sets_the_epoch_budget(tiny_checkpoint, tmp_path):
    from kerabert.tuning import tune

    options = {k: v for k, v in FIXED.items() if k != "epochs"}
    result = tune("sentiment", tiny_data(24), tiny_data(8, seed=1), tuner="hyperband",
                  max_epochs=2, backbone=tiny_checkpoint, output_dir=tmp_path / "hb",
                  verbose=0, **options)
    # max_epochs 2, factor 3: one bracket of ceil(1 + log3(2)) = 2 trials, each trained
    # for the whole budget (Hyperband's "tuner/epochs", not the head's epoch choice).
    assert [t.status for t in result.trials] == ["COMPLETED", "COMPLETED"]
    assert [t.hyperparameters["epochs"] for t in result.trials] == [2, 2]
    report = json.loads((tmp_path / "hb" / "best" / "metrics.json").read_text())
    assert report["epochs"] == 2 and report["epochs_run"] == 2
    assert report["steps"] == 2 * 3  # 24 examples, batch 8

    with pytest.raises(ValueError, match="tuner must be one of"):
        tune("sentiment", tiny_data(8), tiny_data(8), tuner="grid",
             backbone=tiny_checkpoint, output_dir=tmp_path / "grid", verbose=0)
