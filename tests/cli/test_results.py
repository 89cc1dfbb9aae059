"""What a run leaves: the report alone on stdout, curves.png, predictions from file to
file, evaluation reports, and label names that survive saving and exporting."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from kerabert.backbone import save_backbone
from kerabert.cli import main
from tests.conftest import REPO, TINY_VOCABULARY, make_tiny_backbone

ROWS = [("great film", "1"), ("awful film", "0"), ("good story", "1"), ("dull story", "0"),
        ("brilliant , funny", "1"), ("boring , bad", "0")] * 4
TRAIN = "sentence\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in ROWS)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny sentiment model trained by `kerabert train` with label names; its stdout
    and stderr."""
    from kerabert.tokenizer import BertTokenizer

    root = tmp_path_factory.mktemp("cli")
    save_backbone(make_tiny_backbone(), BertTokenizer(TINY_VOCABULARY, lowercase=True),
                  root / "backbone")
    (root / "train.tsv").write_text(TRAIN)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # conftest's; the command line sets its own
    # A separate process: stdout and stderr as a shell pipe sees them.
    result = subprocess.run(
        [sys.executable, "-m", "kerabert", "train", "--head", "sentiment",
         "--train", str(root / "train.tsv"), "--validation", str(root / "train.tsv"),
         "--text-column", "sentence", "--backbone", str(root / "backbone"),
         "--output", str(root / "run"), "--epochs", "2", "--batch-size", "8",
         "--sequence-length", "16", "--learning-rate", "1e-3",
         "--label-names", "0=negative,1=positive"],
        capture_output=True, text=True, timeout=600, env=env, cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


@pytest.mark.slow
def test_stdout_is_the_report_alone(trained):
    root, result = trained
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # `| tail -1 | python -m json.tool` works
    report = json.loads(lines[0])
    assert report["train_examples"] == 24 and report["epochs_run"] == 2
    assert "history" not in report
    # Progress went to stderr as plain per-epoch lines (not a terminal: no bar).
    assert "Epoch 1/2" in result.stderr and "Epoch 2/2" in result.stderr
    assert "\x1b[" not in result.stderr and "\r" not in result.stderr
    assert "━" not in result.stderr
    # TensorFlow's start-up chatter is hidden.
    assert "absl::InitializeLog" not in result.stderr
    assert "cuInit" not in result.stderr


def test_train_writes_curves_png(trained):
    root, result = trained
    report = json.loads(result.stdout)
    curves = root / report["curves"] if not os.path.isabs(report["curves"]) else report["curves"]
    data = open(curves, "rb").read()
    assert data.startswith(PNG) and len(data) > 10_000


def test_label_names_are_kept_in_the_model(trained):
    from kerabert.task import load_model

    root, _ = trained
    model = load_model(root / "run" / "model.keras")
    assert model.head.labels == ["0", "1"]
    assert model.head.get_config()["label_names"] == {"0": "negative", "1": "positive"}
    predictions = model.predict_examples({"text": ["great film", "dull story"]})
    assert {p["label"] for p in predictions} <= {"negative", "positive"}
    assert set(predictions[0]["scores"]) == {"negative", "positive"}
    # Gold values of the data are scored under their names.
    metrics = model.evaluate_examples({"text": [t for t, _ in ROWS],
                                       "label": [l for _, l in ROWS]})
    named = [{"1": "positive", "0": "negative"}[l] for _, l in ROWS]
    hits = sum(p["label"] == g for p, g in zip(
        model.predict_examples({"text": [t for t, _ in ROWS]}), named))
    assert metrics["accuracy"] == pytest.approx(hits / len(ROWS))


@pytest.mark.slow
def test_savedmodel_export_gives_label_names(trained, tmp_path):
    import tensorflow as tf

    import kerabert

    root, _ = trained
    path = kerabert.export(str(root / "run"), "savedmodel", destination=tmp_path / "sm")
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](text=tf.constant(["great film", "dull story"]))
    labels = [x.decode() for x in out["label"].numpy()]
    assert set(labels) <= {"negative", "positive"}
    card = json.loads((path / "card.json").read_text())
    assert card["labels"] == ["negative", "positive"]


def test_predict_tsv_to_jsonl_with_ids_and_text_column(trained, capsys):
    root, _ = trained
    (root / "test.tsv").write_text("id\tsentence\nx1\tgreat film\nx2\tboring , bad\n")
    out = root / "preds.jsonl"
    assert main(["predict", str(root / "run"), "--input", str(root / "test.tsv"),
                 "--text-column", "sentence", "--output", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"output": str(out), "predictions": 2}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in rows] == [("x1", "great film"), ("x2", "boring , bad")]
    assert all(r["label"] in ("negative", "positive") for r in rows)


def test_predict_csv_without_ids_numbers_lines(trained, capsys):
    root, _ = trained
    (root / "test.csv").write_text('text\n"great, witty film"\n\n"dull story"\n')
    assert main(["predict", str(root / "run"), "--input", str(root / "test.csv")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Line numbers of the file (the header is line 1, line 3 is blank).
    assert [(r["id"], r["text"]) for r in rows] == [("2", "great, witty film"),
                                                    ("4", "dull story")]


def test_predict_missing_text_column_names_file_and_line(trained, capsys):
    root, _ = trained
    (root / "bad.tsv").write_text("id\tbody\nx1\tgreat film\n")
    assert main(["predict", str(root / "run"), "--input", str(root / "bad.tsv")]) == 2
    err = capsys.readouterr().err
    assert "bad.tsv:1: header has no column" in err and "Traceback" not in err


def test_evaluate_report(trained, capsys):
    root, _ = trained
    report_dir = root / "report"
    assert main(["evaluate", str(root / "run"), "--data", str(root / "train.tsv"),
                 "--text-column", "sentence", "--report", str(report_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["examples"] == 24
    for name in ("report.md", "report.json", "per_class.csv", "confusion.csv",
                 "confusion.md", "confusion.png", "errors.jsonl", "predictions.jsonl"):
        assert (report_dir / name).is_file(), name
    assert (report_dir / "confusion.png").read_bytes().startswith(PNG)
    summary = json.loads((report_dir / "report.json").read_text())
    matrix = summary["confusion"]["matrix"]
    assert summary["confusion"]["labels"] == ["negative", "positive"]
    assert sum(map(sum, matrix)) == 24 and [sum(row) for row in matrix] == [12, 12]
    correct = matrix[0][0] + matrix[1][1]
    assert metrics["accuracy"] == pytest.approx(correct / 24)
    with open(report_dir / "per_class.csv", encoding="utf-8") as f:
        per_class = {row["label"]: row for row in csv.DictReader(f)}
    assert per_class["negative"]["support"] == "12"
    assert float(per_class["macro avg"]["f1"]) == pytest.approx(metrics["macro_f1"], abs=1e-4)
    predictions = [json.loads(line) for line in
                   (report_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 24 and predictions[0]["id"] == "2"  # line 2 of train.tsv
    errors = [json.loads(line) for line in (report_dir / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 24 - correct
    assert all(e["gold"] != e["predicted"] for e in errors)
    assert [e["score"] for e in errors] == sorted((e["score"] for e in errors), reverse=True)
    assert "## Confusion matrix" in (report_dir / "report.md").read_text()
