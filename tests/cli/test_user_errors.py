"""Every user mistake ends as one line on stderr, `kerabert: error: ...`, exit status 2,
never a traceback (issue 15): bad option values, data without labels, broken inputs
and model files. One tiny model is trained once for the whole module."""

from __future__ import annotations

import json
import zipfile

import pytest

from kerabert.backbone import save_backbone
from kerabert.cli import main
from tests.cli.test_cli import TRAIN
from tests.conftest import TINY_VOCABULARY, make_tiny_backbone


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from kerabert.tokenizer import BertTokenizer

    root = tmp_path_factory.mktemp("errors")
    save_backbone(make_tiny_backbone(), BertTokenizer(TINY_VOCABULARY, lowercase=True),
                  root / "backbone")
    (root / "train.tsv").write_text(TRAIN)
    (root / "nolabel.tsv").write_text("sentence\tpolarity\ngreat film\tpos\n")
    assert main(["train", "--head", "sentiment", "--train", str(root / "train.tsv"),
                 "--backbone", str(root / "backbone"), "--output", str(root / "run"),
                 "--batch-size", "8", "--sequence-length", "16", "--epochs", "2",
                 "--no-tensorboard"]) == 0
    return root


def _one_line_error(capsys, argv, expected):
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert lines[-1].startswith("kerabert: error: "), err
    assert expected in lines[-1], err
    return lines[-1]


def _train(workspace, *options, data="train.tsv", output="never"):
    return ["train", "--head", "sentiment", "--train", str(workspace / data),
            "--backbone", str(workspace / "backbone"), "--output", str(workspace / output),
            "--sequence-length", "16", "--batch-size", "8", "--epochs", "1", *options]


@pytest.mark.parametrize("options, expected", [
    (["--sequence-length", "0"], "--sequence-length 0: must be at least 3"),
    (["--sequence-length", "100000"], "the backbone has only 128 positions"),
    (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
    (["--batch-size", "-3"], "--batch-size -3: must be at least 1"),
    (["--epochs", "0"], "--epochs 0: must be at least 1"),
    (["--epochs", "-1"], "--epochs -1: must be at least 1"),
    (["--steps-per-epoch", "0"], "--steps-per-epoch 0: must be at least 1"),
    (["--learning-rate", "-1"], "--learning-rate -1.0: must be in (0, inf]"),
    (["--head-option", "nosuch=1"], "head 'sentiment' has no option 'nosuch'"),
])
@pytest.mark.slow
def test_bad_training_options(workspace, capsys, options, expected):
    _one_line_error(capsys, _train(workspace, *options), expected)
    assert not (workspace / "never").exists()  # refused before writing anything


def test_train_without_a_label_column_lists_columns_and_the_option(workspace, capsys):
    line = _one_line_error(capsys, _train(workspace, data="nolabel.tsv"),
                           "nolabel.tsv:1: no label column to train on")
    assert "'sentence', 'polarity'" in line and "--label-column" in line
    assert not (workspace / "never").exists()


def test_evaluate_without_a_label_column_is_an_error_not_empty_metrics(workspace, capsys):
    line = _one_line_error(capsys, ["evaluate", str(workspace / "run"), "--data",
                                    str(workspace / "nolabel.tsv")],
                           "nolabel.tsv:1: no label column to evaluate against")
    assert "--label-column" in line


def test_a_non_empty_output_is_refused_unless_overwrite(workspace, capsys):
    _one_line_error(capsys, _train(workspace, output="run"), "the folder is not empty")
    assert (workspace / "run" / "model.keras").is_file()  # untouched


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "{run}", "--data", "{train}", "--batch-size", "0"], "--batch-size 0"),
    (["predict", "{run}", "--text", "fine", "--batch-size", "-1"], "--batch-size -1"),
])
def test_bad_batch_sizes_of_evaluate_and_predict(workspace, capsys, argv, expected):
    argv = [a.format(run=workspace / "run", train=workspace / "train.tsv") for a in argv]
    _one_line_error(capsys, argv, expected)


@pytest.mark.parametrize("content, expected", [
    (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', "in.jsonl:2: not valid UTF-8"),
    (b'{"text": null}\n', "in.jsonl:1: 'text' is null, not text"),
    (b'{"text": 3}\n', "in.jsonl:1: 'text' is int 3, not text"),
    (b'{"text": "fine"}\n{"text": {"a": 1}}\n', "in.jsonl:2: 'text' is dict"),
    (b'{"text": "fine"}\n{"text": ["a", "b"]}\n', "in.jsonl:2: 'text' is list"),
    (b'{"text": "fine"}\n{"txt": "oops"}\n', "in.jsonl:2: missing field 'text'"),
])
def test_bad_predict_inputs_name_file_and_line(workspace, capsys, content, expected):
    (workspace / "in.jsonl").write_bytes(content)
    _one_line_error(capsys, ["predict", str(workspace / "run"), "--input",
                             str(workspace / "in.jsonl")], expected)


def test_predict_input_a_folder(workspace, capsys):
    _one_line_error(capsys, ["predict", str(workspace / "run"), "--input", str(workspace)],
                    "is a folder")


def test_predict_input_with_a_byte_order_mark(workspace, capsys):
    (workspace / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "great film"}\n"dull"\n')
    assert main(["predict", str(workspace / "run"), "--input",
                 str(workspace / "bom.jsonl")]) == 0
    predictions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(predictions) == 2


def _bit_flipped(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0x10
    return bytes(data)


@pytest.mark.parametrize("make, expected", [
    (lambda good: b"", "the file is empty"),
    (lambda good: good[: len(good) // 2], "not a whole .keras file"),
    (lambda good: b"garbage " * 100, "not a whole .keras file"),
    (_bit_flipped, "corrupt"),
])
def test_broken_model_files(workspace, capsys, tmp_path, make, expected):
    good = (workspace / "run" / "model.keras").read_bytes()
    broken = tmp_path / "model.keras"
    broken.write_bytes(make(good))
    _one_line_error(capsys, ["predict", str(broken), "--text", "fine"], expected)


def test_a_plain_keras_model_and_a_lambda_layer(workspace, capsys, tmp_path):
    import keras

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    _one_line_error(capsys, ["predict", str(tmp_path / "plain.keras"), "--text", "x"],
                    "a plain Keras model (Sequential), not a kerabert task model")
    # A task model whose config holds a Lambda layer (arbitrary code): safe mode refuses.
    source = workspace / "run" / "model.keras"
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    lambda_layer = keras.layers.serialize(keras.layers.Lambda(lambda x: x))
    config["config"]["tokenizer"] = lambda_layer
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "lambda.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _one_line_error(capsys, ["predict", str(tmp_path / "lambda.keras"), "--text", "x"],
                    "holds a Lambda layer")


def test_debug_shows_the_traceback(workspace, capsys):
    assert main(["--debug", "predict", str(workspace / "run"), "--text", "x",
                 "--batch-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("kerabert: error:")


@pytest.mark.slow
def test_skip_bad_count_is_in_the_report_and_metrics(workspace, capsys):
    bad = workspace / "somebad.tsv"
    bad.write_text(TRAIN + "broken row\n" + "x" * 140_000 + "\tpos\n")
    output = workspace / "skipping"
    assert main(_train(workspace, "--skip-bad", "--no-tensorboard", data="somebad.tsv",
                       output="skipping")) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["skipped_train_rows"] == 2
    assert json.loads((output / "metrics.json").read_text())["skipped_train_rows"] == 2
