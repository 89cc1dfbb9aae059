"""The BERT family beside BERT: keras-hub backbones loaded from Hugging Face folders.

Each module reads one `model_type` (`build` from `config.json`, `load_weights` from the
safetensors by Hugging Face name, `tokenizer` from the folder's tokenizer files) and
returns an `EncoderBackbone` with BERT's inputs and outputs, so every kerabert head,
the data pipeline and training work on it unchanged:

| `model_type` | keras-hub backbone | tokenizer in the graph |
|---|---|---|
| `distilbert` | `DistilBertBackbone` | WordPiece (`BertTokenizer`) |
| `electra` | `ElectraBackbone` | WordPiece (`BertTokenizer`) |
| `roberta` | `RobertaBackbone` | byte-level BPE (`BytePairTokenizer`) |
| `xlm-roberta` | `XLMRobertaBackbone` | SentencePiece (`SentencePieceTokenizer`) |
| `albert` | `AlbertBackbone` | SentencePiece |
| `deberta-v2` (DeBERTa-v3) | `DebertaV3Backbone` | SentencePiece |

BERT itself (`model_type: bert`, cased or uncased) stays `kerabert.backbone.BertBackbone`.

Example:
```python
backbone, tokenizer = kerabert.load_backbone("path/to/xlm-roberta-folder")
backbone.family  # 'XLMRobertaBackbone'
```
"""

from __future__ import annotations

from kerabert import hf_folder, hf_weights
from kerabert.families import albert, deberta_v3, distilbert, electra, roberta, xlm_roberta
from kerabert.families.encoder import EncoderBackbone
from kerabert.validation import CheckpointError

__all__ = ["FAMILIES", "EncoderBackbone", "load_hf_folder", "supported_model_types"]

#: `model_type` -> the module that loads it.
FAMILIES = {module.MODEL_TYPE: module
            for module in (distilbert, electra, roberta, xlm_roberta, albert, deberta_v3)}


def supported_model_types():
    """Every Hugging Face `model_type` kerabert loads (BERT included)."""
    return ["bert", *FAMILIES]


def load_hf_folder(path, config, lowercase=None, dtype=None, load_weights=True):
    """`(EncoderBackbone, tokenizer)` from a Hugging Face folder of a family in
    `FAMILIES` (the encoder of any task checkpoint; task heads are not read)."""
    model_type = config.get("model_type")
    config_path = path / "config.json"
    family = FAMILIES.get(model_type)
    if family is None:
        raise CheckpointError(
            f"{config_path}: model_type {model_type!r} is not supported; kerabert loads "
            f"{', '.join(supported_model_types())}")
    tokenizer = family.tokenizer(path, lowercase)
    backbone = family.build(config, config_path, dtype)
    if backbone.vocabulary_size < tokenizer.vocabulary_size:
        raise CheckpointError(
            f"{config_path}: vocab_size {backbone.vocabulary_size} is smaller than the "
            f"tokenizer's {tokenizer.vocabulary_size} pieces")
    if load_weights:
        hf_folder.check_weights_file(path)
        tensors = hf_weights.Tensors(path, family.PREFIX)
        family.load_weights(backbone, tensors, tensors.prefix, config)
    return backbone, tokenizer
