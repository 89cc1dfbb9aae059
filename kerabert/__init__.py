"""kerabert: fine-tune BERT-family encoders with Keras 3 on TensorFlow.

A BERT backbone with real pretrained weights (`load_backbone`), task heads found at
runtime through the `kerabert.heads` entry points (`kerabert.heads`), one plain
`keras.Model` per task (`build_model`), tf.data pipelines that tokenize in the graph,
and exports that take raw text.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow turns its oneDNN CPU kernels on by default only where the CPU has AVX-512
# VNNI or newer; on AVX2-only CPUs (AMD EPYC Zen 3 here) they are off, although there
# they train MiniLM ~1.4x faster (docs/benchmarks/speed.md). Set before TensorFlow is
# imported; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from kerabert import heads
from kerabert.backbone import BertBackbone, CheckpointError, load_backbone, save_backbone
from kerabert.data import DataError, Examples, load_examples
from kerabert.export import export  # noqa: E402  (the function shadows the package name)
from kerabert.task import Task, build_model, load_model
from kerabert.tokenizer import BertTokenizer
from kerabert.training import make_optimizer, train

__all__ = [
    "BertBackbone",
    "BertTokenizer",
    "CheckpointError",
    "DataError",
    "Examples",
    "Task",
    "build_model",
    "heads",
    "load_backbone",
    "load_examples",
    "load_model",
    "make_optimizer",
    "save_backbone",
    "train",
]
