"""A quiet TensorFlow start and clean streams for the command line.

TensorFlow's C++ runtime writes start-up lines to file descriptor 2 while it is imported
(`WARNING: All log messages before absl::InitializeLog() ...`, `cudart_stub.cc ... Could
not find cuda drivers`, `cpu_feature_guard.cc ...`); they ignore `TF_CPP_MIN_LOG_LEVEL`
because absl logging is not initialized yet. Later ones (`failed call to cuInit`, oneDNN
notes, TFLite converter logs) honour it. So the command line sets the log level before
the first TensorFlow import and imports TensorFlow with file descriptor 2 captured,
passing on any captured line that is not start-up chatter.

Example:
```python
from kerabert.cli.quiet import quiet_tensorflow

quiet_tensorflow(verbose=False)   # before anything imports TensorFlow
```
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO

# Lines TensorFlow prints on every start on a CPU-only machine.
CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} .*\] "
    r"|To enable the following instructions: )"
)


@contextlib.contextmanager
def captured_fd2() -> Iterator[list[str]]:
    """Capture what C and C++ code write to file descriptor 2 inside the block; the
    captured lines are in the yielded list after it."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's, absl's and oneDNN's start-up lines (unless `verbose`).

    An explicit `TF_CPP_MIN_LOG_LEVEL` in the environment wins. Lines captured during
    the import that are not known chatter are written to stderr.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        try:
            with captured_fd2() as lines:
                import tensorflow  # noqa: F401
        finally:
            for line in lines:
                if not CHATTER.match(line):
                    print(line, file=sys.stderr)
    import absl.logging
    import tensorflow as tf

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[TextIO]:
    """Send everything printed inside the block (Keras progress, banners) to stderr, so
    that stdout carries only the result; yields the real stdout for the result."""
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield real_stdout


def keras_verbosity() -> int:
    """Keras `fit` verbosity for the command line: a progress bar on a terminal, one
    plain line per epoch otherwise (log files, pipes)."""
    return 1 if sys.stderr.isatty() else 2
