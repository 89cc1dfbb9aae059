"""kerabert: fine-tune BERT-family encoders with Keras 3 on TensorFlow.

A BERT backbone with real pretrained weights (`load_backbone`), task heads found at
runtime through the `kerabert.heads` entry points (`kerabert.heads`), one plain
`keras.Model` per task (`build_model`), tf.data pipelines that tokenize in the graph,
and exports that take raw text.

The public names are imported on first use (PEP 562), so `import kerabert` (and
`kerabert --help`) does not load TensorFlow until something needs it.

Example:
```python
import kerabert

print(sorted(kerabert.__all__)[:3])   # ['BertBackbone', 'BertTokenizer', 'CheckpointError']
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

import os as _os

# TensorFlow turns its oneDNN CPU kernels on by default only where the CPU has AVX-512
# VNNI or newer; on AVX2-only CPUs (AMD EPYC Zen 3 here) they are off, although there
# they train MiniLM faster (docs/benchmarks/speed.md). Set before TensorFlow is
# imported; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Public name -> the module that defines it.
_LAZY = {
    "BertBackbone": "kerabert.backbone",
    "CheckpointError": "kerabert.backbone",
    "load_backbone": "kerabert.backbone",
    "save_backbone": "kerabert.backbone",
    "DataError": "kerabert.data",
    "Examples": "kerabert.data",
    "load_examples": "kerabert.data",
    "Task": "kerabert.task",
    "build_model": "kerabert.task",
    "load_model": "kerabert.task",
    "BertTokenizer": "kerabert.tokenizer",
    "SentencePieceTokenizer": "kerabert.sentencepiece",
    "BytePairTokenizer": "kerabert.byte_pair",
    "EncoderBackbone": "kerabert.families.encoder",
    "make_optimizer": "kerabert.optim",
    "TrainConfig": "kerabert.config",
    "train": "kerabert.training",
}

__all__ = sorted([*_LAZY, "heads"])

if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from kerabert import heads
    from kerabert.backbone import BertBackbone, CheckpointError, load_backbone, save_backbone
    from kerabert.data import DataError, Examples, load_examples
    from kerabert.export import export
    from kerabert.task import Task, build_model, load_model
    from kerabert.tokenizer import BertTokenizer
    from kerabert.sentencepiece import SentencePieceTokenizer
    from kerabert.byte_pair import BytePairTokenizer
    from kerabert.families.encoder import EncoderBackbone
    from kerabert.config import TrainConfig
    from kerabert.optim import make_optimizer
    from kerabert.training import train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in ("heads", "export"):
        # `kerabert.export` is both a package and its `export` function: the package
        # module is callable (see kerabert/export/__init__.py), so either use works.
        value = importlib.import_module(f"kerabert.{name}")
    else:
        raise AttributeError(f"module 'kerabert' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "export", "__version__"})
