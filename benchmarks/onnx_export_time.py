"""Wall time of `kerabert.export(model, "onnx")` for the test suite's tiny sentiment model,
with and without the per-optimizer garbage collections (BENCHMARKS.md, ONNX export memory).

    python benchmarks/onnx_export_time.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    import kerabert
    from kerabert.export import onnx
    from tests.export.helpers import tiny_sentiment

    model = tiny_sentiment()
    for label, threshold in (("collections after every optimizer", 0),
                             ("collections only from 16 MB of weights (default)",
                              onnx.COLLECT_FROM_BYTES)):
        with mock.patch.object(onnx, "COLLECT_FROM_BYTES", threshold), \
                tempfile.TemporaryDirectory() as root:
            started = time.perf_counter()
            kerabert.export(model, "onnx", root=root, name="tiny")
            print(f"{label}: {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
