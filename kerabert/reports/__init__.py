"""Reports of a run people can look at: evaluation tables and plots (PNG).

Example:
```python
from kerabert.reports import plot_curves

plot_curves({"loss": [0.7, 0.5]}, "/tmp/curves.png")
```
"""

from kerabert.reports.evaluation import write_report
from kerabert.reports.plots import plot_bars, plot_confusion, plot_curves

__all__ = ["plot_bars", "plot_confusion", "plot_curves", "write_report"]
