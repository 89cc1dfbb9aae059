"""The command line mirrors the API: heads, train, evaluate, predict; user errors are one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kerabert.backbone import save_backbone
from kerabert.cli import main
from tests.conftest import make_tiny_backbone

TRAIN = "sentence\tlabel\n" + "".join(
    f"{t}\t{l}\n"
    for t, l in [("great film", "pos"), ("awful film", "neg"), ("good story", "pos"),
                 ("dull story", "neg"), ("brilliant , funny", "pos"), ("boring , bad", "neg")] * 4
)


@pytest.fixture
def workspace(tmp_path, tiny_tokenizer):
    save_backbone(make_tiny_backbone(), tiny_tokenizer, tmp_path / "backbone")
    (tmp_path / "train.tsv").write_text(TRAIN)
    return tmp_path


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_heads_lists_builtin_heads_with_distribution():
    kerabert_bin = shutil.which("kerabert", path=str(__import__("pathlib").Path(sys.executable).parent))
    result = subprocess.run([kerabert_bin, "heads", "--json"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    heads = {h["name"]: h for h in _json_lines(result.stdout)}
    assert heads["sentiment"]["distribution"] == "kerabert"
    assert heads["text-classification"]["fields"] == ["text"]


@pytest.mark.slow
def test_train_evaluate_predict(workspace, capsys):
    out = workspace / "run"
    code = main(["train", "--head", "sentiment", "--train", str(workspace / "train.tsv"),
                 "--validation", str(workspace / "train.tsv"), "--text-column", "sentence",
                 "--backbone", str(workspace / "backbone"), "--output", str(out),
                 "--epochs", "1", "--batch-size", "8", "--sequence-length", "16"])
    assert code == 0
    report = _json_lines(capsys.readouterr().out)[-1]
    assert report["train_examples"] == 24
    # The reported accuracy is the saved model's, counted here from its predictions.
    import kerabert

    sentences, labels = zip(*(line.split("\t") for line in TRAIN.splitlines()[1:]))
    predicted = [p["label"] for p in kerabert.load_model(out / "model.keras")
                 .predict_examples({"text": list(sentences)})]
    accuracy = sum(p == g for p, g in zip(predicted, labels)) / len(labels)
    assert report["validation"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert (out / "model.keras").is_file() and (out / "metrics.json").is_file()

    assert main(["evaluate", str(out), "--data", str(workspace / "train.tsv"),
                 "--text-column", "sentence"]) == 0
    metrics = _json_lines(capsys.readouterr().out)[-1]
    assert metrics["examples"] == 24
    assert metrics["accuracy"] == pytest.approx(accuracy, abs=1e-6)

    assert main(["predict", str(out), "--text", "great film", "--text", "dull story"]) == 0
    predictions = _json_lines(capsys.readouterr().out)
    assert len(predictions) == 2 and {p["label"] for p in predictions} <= {"pos", "neg"}

    inputs = workspace / "in.jsonl"
    inputs.write_text('{"text": "good"}\n{"text": "bad"}\n{"txt": "oops"}\n')
    assert main(["predict", str(out), "--input", str(inputs)]) == 2
    assert "in.jsonl:3: missing field 'text'" in capsys.readouterr().err


def test_bad_data_is_one_line_naming_file_and_line(workspace, capsys):
    bad = workspace / "bad.tsv"
    bad.write_text("sentence\tlabel\nok\tpos\nbroken row\n")
    code = main(["train", "--head", "sentiment", "--train", str(bad), "--text-column",
                 "sentence", "--backbone", str(workspace / "backbone"),
                 "--output", str(workspace / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.tsv:3:" in err and "Traceback" not in err


def test_unknown_head_lists_available(workspace, capsys):
    code = main(["train", "--head", "nope", "--train", str(workspace / "train.tsv"),
                 "--output", str(workspace / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown head 'nope'" in err and "sentiment" in err


def test_missing_model(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--text", "x"]) == 2
    assert "no such model" in capsys.readouterr().err
