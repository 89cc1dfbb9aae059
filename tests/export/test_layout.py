"""Version directories, atomic writes and clear errors of `kerabert.export`."""

from __future__ import annotations

import json

import pytest

import kerabert
from kerabert.export import layout, savedmodel
from kerabert.export.layout import DestinationExistsError
from kerabert.export.serving import ExportError
from kerabert.heads.base import Head
from tests.export.helpers import tiny_sentiment

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return tiny_sentiment()


def _fake_writer(model, directory, **options):
    (directory / "saved_model.pb").write_bytes(b"pb")
    return {"signatures": {}}


def test_versions_increment_and_never_overwrite(tmp_path, model, monkeypatch):
    monkeypatch.setattr(savedmodel, "write", _fake_writer)
    first = kerabert.export(model, "savedmodel", root=tmp_path, name="sst2")
    (tmp_path / "sst2" / "7").mkdir()  # a version made elsewhere
    second = kerabert.export(model, "savedmodel", root=tmp_path, name="sst2")
    assert (first.name, second.name) == ("1", "8")
    assert (first / "saved_model.pb").read_bytes() == b"pb"
    assert layout.versions(tmp_path / "sst2") == [1, 7, 8]
    card = json.loads((second / "card.json").read_text())
    assert card["head"]["name"] == "sentiment" and card["labels"] == ["negative", "positive"]
    assert card["max_sequence_length"] == 32 and card["backbone"]["num_layers"] == 2


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_export_leaves_nothing_half_written(tmp_path, model, monkeypatch, error):
    def failing_writer(model, directory, **options):
        (directory / "saved_model.pb").write_bytes(b"half")
        raise error

    monkeypatch.setattr(savedmodel, "write", failing_writer)
    with pytest.raises(type(error)):
        kerabert.export(model, "savedmodel", root=tmp_path, name="sst2")
    with pytest.raises(type(error)):
        kerabert.export(model, "savedmodel", destination=tmp_path / "exact")
    assert list((tmp_path / "sst2").iterdir()) == []  # no version, no temporary sibling
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sst2"]


def test_existing_destination_is_refused(tmp_path, model, monkeypatch):
    monkeypatch.setattr(savedmodel, "write", _fake_writer)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(DestinationExistsError, match="already exists"):
        kerabert.export(model, "savedmodel", destination=tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_unknown_format_and_bad_options(model):
    with pytest.raises(ExportError, match="unknown export format 'torchscript'"):
        kerabert.export(model, "torchscript")
    with pytest.raises(ExportError, match="not savedmodel"):
        kerabert.export(model, "savedmodel", quantize="int8")
    with pytest.raises(ExportError, match="unknown quantization"):
        kerabert.export(model, "tflite", quantize="int4")


class NoServingHead(Head):
    name = "no-serving"
    fields = ("text",)

    def build_outputs(self, backbone_outputs, inputs):
        import keras

        return keras.layers.Dense(2, name="logits")(backbone_outputs["pooled_output"])


def test_head_without_serving_outputs_is_refused(tmp_path):
    from tests.export.helpers import tiny_task

    with pytest.raises(ExportError, match="'no-serving'.*does not implement serving_outputs"):
        kerabert.export(tiny_task(NoServingHead()), "onnx", root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    from kerabert.cli import main

    assert main(["export", str(tmp_path / "missing"), "--format", "onnx"]) == 2
    assert "no such model" in capsys.readouterr().err


KILLED_EXPORT = """
import sys, time
from pathlib import Path
from kerabert.export import layout
with layout.atomic_directory(model_dir=sys.argv[1]) as target:
    (target.temporary / "variables").mkdir()
    (target.temporary / "variables" / "variables.data").write_bytes(b"x" * 1000)
    print("writing", flush=True)
    time.sleep(60)
    (target.temporary / "saved_model.pb").write_bytes(b"pb")
"""


def test_killed_export_leaves_no_visible_version_and_is_cleaned_up(tmp_path, model,
                                                                    monkeypatch):
    import signal
    import subprocess
    import sys

    model_dir = tmp_path / "sst2"
    process = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(model_dir)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert layout.versions(model_dir) == []  # TF Serving sees no version
    assert [p.name.startswith(".version.partial-") for p in model_dir.iterdir()] == [True]
    monkeypatch.setattr(savedmodel, "write", _fake_writer)
    written = kerabert.export(model, "savedmodel", root=tmp_path, name="sst2")
    assert [p.name for p in model_dir.iterdir()] == ["1"]  # the dead export's folder gone
    assert written == model_dir / "1"


def test_other_formats_get_their_own_model_folder(tmp_path):
    assert layout.model_dir(tmp_path, "sst2") == tmp_path / "sst2"
    assert layout.model_dir(tmp_path, "sst2", "savedmodel") == tmp_path / "sst2"
    assert layout.model_dir(tmp_path, "sst2", "tflite") == tmp_path / "sst2-tflite"
    assert layout.model_dir(tmp_path, "sst2", "onnx") == tmp_path / "sst2-onnx"
