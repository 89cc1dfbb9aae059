"""Pictures of a run: training curves and confusion matrices, as PNG files (matplotlib).

matplotlib is imported here only, with the non-interactive Agg backend, so nothing
needs a display and the rest of kerabert does not need matplotlib.

Example:
```python
from kerabert.reports.plots import plot_curves

plot_curves({"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.55, 0.5]}, "/tmp/curves.png")
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss and metrics per epoch (training and validation side by side) to a PNG.

    Args:
        history: Keras `History.history`: `{"loss": [...], "val_loss": [...], ...}`.
        path: the PNG to write.

    Returns:
        `path`.
    """
    plt = _pyplot()
    path = Path(path)
    # One panel per quantity; `val_x` is drawn in the panel of `x`.
    names = [k for k in history if not k.startswith("val_") and k != "examples_per_second"]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in names]
    names = [n for n in names if n != "learning_rate"]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.5 * max(len(names), 1), 3.6),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, label, style in ((name, "train", "o-"), (f"val_{name}", "validation", "s--")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | Path,
                   title: str = "confusion matrix") -> Path:
    """A confusion matrix (rows: true label, columns: predicted) as a PNG heat map,
    each cell with its count and the share of its row.

    Args:
        matrix: `[n, n]` counts.
        labels: the `n` label names.
        path: the PNG to write.
        title: the plot's title.

    Returns:
        `path`.
    """
    plt = _pyplot()
    path = Path(path)
    matrix = np.asarray(matrix)
    n = len(labels)
    size = min(max(3.5, 0.6 * n + 2.0), 16.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:  # past that the numbers are unreadable; the colours still tell
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{matrix[i, j]}\n{shares[i, j]:.0%}", ha="center",
                        va="center", fontsize=8 if n > 10 else 10,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]],
              path: str | Path, title: str = "", ylabel: str = "") -> Path:
    """Grouped bars: one group per name in `groups`, one bar per series in it.

    Args:
        groups: the group names (x axis).
        series: `{name: one value per group}`.
        path: the PNG to write.
        title, ylabel: the plot's title and y-axis label.

    Returns:
        `path`.
    """
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(groups) + 2.0), 3.8))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, groups, rotation=30 if len(groups) > 5 else 0,
                  ha="right" if len(groups) > 5 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
