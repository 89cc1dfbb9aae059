"""Helpers shared by the benchmark scripts: where the data is, what machine ran them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KERABERT_SHARED_DATA", REPO.parent / "shared" / "data"))


def machine():
    """One line: date, CPU model, cores, and the versions that matter."""
    import datetime

    import keras
    import keras_hub
    import tensorflow as tf

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.date.today()} | {model}, {os.cpu_count()} cores | "
        f"tensorflow {tf.__version__}, keras {keras.__version__}, keras-hub {keras_hub.__version__}"
    )


def require_shared_data():
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"real data not found at {SHARED_DATA} (set KERABERT_SHARED_DATA)")
