"""A fast, self-describing command line: help without TensorFlow, defaults in every help,
"did you mean" for typos, and a quiet start-up."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import pytest

from kerabert.cli import COMMANDS, build_parser, main
from tests.conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command line's own setting is under test


def _python(code, *args, timeout=120):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV, cwd=REPO)


HELP_WITHOUT_TENSORFLOW = """
import sys, time
started = time.perf_counter()
from kerabert.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("SECONDS", time.perf_counter() - started, "TF", "tensorflow" in sys.modules,
      file=sys.stderr)
"""


@pytest.mark.parametrize("command", [(), *[(c,) for c in COMMANDS]])
def test_help_imports_no_tensorflow_and_is_fast(command):
    started = time.perf_counter()
    result = _python(HELP_WITHOUT_TENSORFLOW, *command, "--help")
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "usage: kerabert" in result.stdout
    last = result.stderr.strip().splitlines()[-1].split()
    assert last[2:] == ["TF", "False"], result.stderr
    # The bar (1.5 s) for the whole process, interpreter start included.
    assert wall < 1.5, f"kerabert {' '.join(command)} --help took {wall:.2f} s"


def test_import_kerabert_is_lazy_and_keeps_public_names():
    result = _python("import sys, kerabert\n"
                     "print('tensorflow' in sys.modules, sorted(kerabert.__all__))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False"), result.stdout
    import kerabert

    for name in kerabert.__all__:
        assert getattr(kerabert, name) is not None
    assert callable(kerabert.export) and callable(kerabert.export.export)
    with pytest.raises(AttributeError):
        kerabert.no_such_name  # noqa: B018


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_has_a_description_and_every_flag_a_help():
    subparsers = _subparsers()
    assert set(subparsers) == set(COMMANDS)
    for name, parser in subparsers.items():
        assert parser.description, f"`kerabert {name}` has no description"
        for action in parser._actions:
            assert action.help, f"`kerabert {name}` {action.option_strings or action.dest}"


def test_help_shows_defaults():
    subparsers = _subparsers()
    train = subparsers["train"].format_help()
    assert "examples per step (default: 32)" in " ".join(train.split())
    assert "(default: the head's recipe)" in " ".join(train.split())
    assert "(default: auto)" in train  # --precision
    assert "evaluated after training" not in train
    assert "after every epoch" in " ".join(train.split())
    assert "(default: 64)" in subparsers["evaluate"].format_help()


def test_training_defaults_pass_through_to_kerabert_train():
    from kerabert.cli.train import training_keywords

    args = _subparsers()["train"].parse_args(["--head", "x", "--train", "t", "--output", "o"])
    assert args.epochs is None and args.learning_rate is None and args.precision == "auto"
    keywords = training_keywords(args)
    # Unset: kerabert.train's own defaults (the head's recipe) decide.
    assert not {"epochs", "learning_rate", "warmup_ratio", "precision"} & set(keywords)
    args = _subparsers()["train"].parse_args(
        ["--head", "x", "--train", "t", "--output", "o", "--epochs", "3",
         "--learning-rate", "1e-4", "--precision", "float32"])
    keywords = training_keywords(args)
    assert (keywords["epochs"], keywords["learning_rate"], keywords["precision"]) == (
        3, 1e-4, "float32")


@pytest.mark.parametrize("argv, expected", [
    (["trian"], "did you mean 'train'?"),
    (["train", "--head", "x", "--train", "t", "--output", "o", "--lerning-rate", "1"],
     "did you mean '--learning-rate'?"),
    (["predict", "m", "--text", "a", "--outptu", "x"], "did you mean '--output'?"),
    (["train", "--head", "x", "--train", "t", "--output", "o", "--mode", "lroa"],
     "did you mean 'lora'?"),
])
def test_did_you_mean(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert expected in capsys.readouterr().err


def test_unknown_head_suggests_the_closest(tmp_path, capsys):
    (tmp_path / "t.tsv").write_text("text\tlabel\na\tb\n")
    code = main(["train", "--head", "sentimnt", "--train", str(tmp_path / "t.tsv"),
                 "--output", str(tmp_path / "o")])
    assert code == 2
    assert "did you mean 'sentiment'?" in capsys.readouterr().err


@pytest.mark.slow
def test_start_up_is_quiet_unless_verbose():
    # `heads` imports TensorFlow (the heads do); nothing of its start-up may show.
    quiet = subprocess.run([sys.executable, "-m", "kerabert", "heads"], capture_output=True,
                           text=True, timeout=300, env=ENV, cwd=REPO)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", quiet.stderr
    assert "sentiment" in quiet.stdout
    verbose = subprocess.run([sys.executable, "-m", "kerabert", "--verbose", "heads"],
                             capture_output=True, text=True, timeout=300, env=ENV, cwd=REPO)
    assert verbose.returncode == 0, verbose.stderr
    # The check above can fail: TensorFlow does talk when it is let.
    assert "absl::InitializeLog" in verbose.stderr or "cuda" in verbose.stderr.lower()


def test_captured_lines_that_are_not_chatter_are_passed_on(capfd):
    from kerabert.cli.quiet import CHATTER, captured_fd2

    with captured_fd2() as lines:
        os.write(2, b"I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers\n"
                    b"a real problem\n")
    assert lines == ["I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers",
                     "a real problem"]
    assert [line for line in lines if not CHATTER.match(line)] == ["a real problem"]
    assert capfd.readouterr().err == ""  # captured, not shown


def test_label_names_parsing(tmp_path):
    from kerabert.cli.common import UserError, label_names

    assert label_names("0=negative, 1=positive") == {"0": "negative", "1": "positive"}
    (tmp_path / "names.txt").write_text("negative\npositive\n")
    assert label_names(path=str(tmp_path / "names.txt")) == {"0": "negative", "1": "positive"}
    (tmp_path / "pairs.txt").write_text("neg=negative\npos=positive\n")
    assert label_names(path=str(tmp_path / "pairs.txt")) == {"neg": "negative",
                                                            "pos": "positive"}
    with pytest.raises(UserError, match="expected VALUE=NAME"):
        label_names("0=negative,positive")
    assert label_names() is None
