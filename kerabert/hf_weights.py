"""Hugging Face BERT weights by name: one table, read and written.

`backbone_weights(backbone)` maps every weight of a keras-hub `BertBackbone` to its name
and layout in a Hugging Face checkpoint (`Port`), `Tensors` reads a folder's safetensors
(one file or shards; `bert.`-prefixed and TensorFlow-era `gamma`/`beta` names too), and
`assign` loads ports from them with errors naming the file, tensor and shapes.
`kerabert.backbone` loads Hugging Face folders with it (keras-hub's converter needs a
pooler, which token, span and masked-LM checkpoints do not have) and
`kerabert.huggingface` adds the task heads and the way back.

Example:
```python
backbone, _ = kerabert.load_backbone("all-minilm-l6-v2")
sorted(kerabert.hf_weights.backbone_weights(backbone))[0]  # 'embeddings.LayerNorm.bias'
```
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerabert.validation import CheckpointError

#: Older checkpoints' names (TensorFlow-era `gamma`/`beta`) -> today's.
_ALIASES = {".gamma": ".weight", ".beta": ".bias"}


class Port:
    """One weight: a Keras variable and how its array maps to Hugging Face's layout.

    `to_hf(value)` turns the Keras array into Hugging Face's (torch `Linear` weights are
    `[out, in]`, keras-hub's attention kernels `[in, heads, head_dim]`); `to_keras`
    is the inverse, given the variable's shape.
    """

    def __init__(self, variable, to_hf=None, to_keras=None):
        self.variable = variable
        self._to_hf = to_hf or (lambda x: x)
        self._to_keras = to_keras or (lambda x, shape: np.reshape(x, shape))

    def to_hf(self, value):
        return np.ascontiguousarray(self._to_hf(np.asarray(value, np.float32)))

    def to_keras(self, value):
        return self._to_keras(np.asarray(value), tuple(self.variable.shape))


def linear(variable):
    """A Dense kernel `[in, out]` <-> torch `Linear.weight` `[out, in]`."""
    return Port(variable, to_hf=lambda x: x.T, to_keras=lambda x, shape: x.T)


def attention_in(variable):
    """keras-hub's query/key/value kernel `[in, heads, head_dim]` <-> `[out, in]`."""
    return Port(variable, to_hf=lambda x: x.reshape(x.shape[0], -1).T,
                to_keras=lambda x, shape: np.reshape(x.T, shape))


def attention_out(variable):
    """keras-hub's attention output kernel `[heads, head_dim, out]` <-> `[out, in]`."""
    return Port(variable, to_hf=lambda x: x.reshape(-1, x.shape[-1]).T,
                to_keras=lambda x, shape: np.reshape(x.T, shape))


def flat(variable):
    """A bias of any shape <-> a flat vector."""
    return Port(variable, to_hf=lambda x: x.reshape(-1))


def norm(prefix, layer):
    return {f"{prefix}.weight": Port(layer.gamma), f"{prefix}.bias": Port(layer.beta)}


#: Hugging Face names of one BERT-style encoder block's weights, by role.
BERT_BLOCK = {"query": "attention.self.query", "key": "attention.self.key",
              "value": "attention.self.value", "attention_output": "attention.output.dense",
              "attention_norm": "attention.output.LayerNorm",
              "intermediate": "intermediate.dense", "output": "output.dense",
              "output_norm": "output.LayerNorm"}


def embedding_weights(token, position, norm_layer, segment=None) -> dict[str, Port]:
    """`{name: Port}` of BERT-style embeddings: keras-hub's token and position embedding
    layers, the segment (token-type) embedding if any, and their norm."""
    ports = {"embeddings.word_embeddings.weight": Port(token.embeddings),
             "embeddings.position_embeddings.weight": Port(position.position_embeddings),
             **norm("embeddings.LayerNorm", norm_layer)}
    if segment is not None:
        ports["embeddings.token_type_embeddings.weight"] = Port(segment.embeddings)
    return ports


def block_weights(prefix, attention, attention_norm, intermediate, output, output_norm,
                  names=None) -> dict[str, Port]:
    """`{name: Port}` of one encoder block from its layers: an attention layer with
    `query_dense`/`key_dense`/`value_dense`/`output_dense` (keras-hub's
    `MultiHeadAttention`, or DeBERTa's with `_`-prefixed names), its norm, and the
    feed-forward layers. `names` maps roles to Hugging Face names (`BERT_BLOCK`)."""
    names = names or BERT_BLOCK

    def dense(role):
        return (getattr(attention, f"{role}_dense", None)
                or getattr(attention, f"_{role}_dense"))

    ports = {}
    for role in ("query", "key", "value"):
        ports[f"{prefix}{names[role]}.weight"] = attention_in(dense(role).kernel)
        ports[f"{prefix}{names[role]}.bias"] = flat(dense(role).bias)
    ports[f"{prefix}{names['attention_output']}.weight"] = attention_out(dense("output").kernel)
    ports[f"{prefix}{names['attention_output']}.bias"] = Port(dense("output").bias)
    ports.update(norm(f"{prefix}{names['attention_norm']}", attention_norm))
    ports[f"{prefix}{names['intermediate']}.weight"] = linear(intermediate.kernel)
    ports[f"{prefix}{names['intermediate']}.bias"] = Port(intermediate.bias)
    ports[f"{prefix}{names['output']}.weight"] = linear(output.kernel)
    ports[f"{prefix}{names['output']}.bias"] = Port(output.bias)
    ports.update(norm(f"{prefix}{names['output_norm']}", output_norm))
    return ports


def transformer_block_weights(prefix, block, names=None) -> dict[str, Port]:
    """`block_weights` of a keras-hub `TransformerEncoder`."""
    from kerabert import compat

    sub = compat.encoder_sublayers(block)
    return block_weights(prefix, sub["self_attention"], sub["self_attention_layer_norm"],
                         sub["intermediate_dense"], sub["output_dense"],
                         sub["output_layer_norm"], names)


def backbone_weights(backbone, pooler=True) -> dict[str, Port]:
    """`{Hugging Face name: Port}` of a keras-hub `BertBackbone` (names without the
    `bert.` prefix that task checkpoints add)."""
    ports = embedding_weights(*(backbone.get_layer(name) for name in (
        "token_embedding", "position_embedding", "embeddings_layer_norm", "segment_embedding")))
    for i in range(backbone.num_layers):
        ports.update(transformer_block_weights(f"encoder.layer.{i}.",
                                               backbone.get_layer(f"transformer_layer_{i}")))
    if pooler:
        pooled = backbone.get_layer("pooled_dense")
        ports["pooler.dense.weight"] = linear(pooled.kernel)
        ports["pooler.dense.bias"] = Port(pooled.bias)
    return ports


class Tensors:
    """The tensors of a Hugging Face folder's safetensors (one file or shards), by
    name, read on demand; TensorFlow-era names are found too. `prefix` is the model
    name task checkpoints put before the encoder's names (`"bert."`), or `""`."""

    def __init__(self, folder, model_prefix="bert."):
        from safetensors import safe_open

        folder = Path(folder)
        index = folder / "model.safetensors.index.json"
        if (folder / "model.safetensors").exists():
            files = [folder / "model.safetensors"]
        elif index.exists():
            with open(index, encoding="utf-8") as f:
                files = [folder / s for s in sorted(set(json.load(f).get("weight_map", {})
                                                        .values()))]
        else:
            raise CheckpointError(f"{folder}: no model.safetensors")
        self.source = files[0] if len(files) == 1 else index
        self._where = {}
        self._handles = []
        for file in files:
            try:
                handle = safe_open(str(file), framework="np")
            except Exception as e:  # safetensors raises its own error type
                raise CheckpointError(f"{file}: not a readable safetensors file ({e})") from None
            self._handles.append(handle)
            for name in handle.keys():
                canonical = name
                for old, new in _ALIASES.items():
                    if canonical.endswith(old):
                        canonical = canonical[: -len(old)] + new
                self._where[canonical] = (handle, name)
        self.prefix = (model_prefix if any(n.startswith(model_prefix) for n in self._where)
                       else "")

    def __contains__(self, name):
        return name in self._where

    def get(self, name):
        if name not in self._where:
            raise CheckpointError(f"{self.source}: no tensor {name!r}")
        handle, stored = self._where[name]
        return handle.get_tensor(stored)


def assign(ports: dict[str, Port], tensors: Tensors, prefix: str = "") -> None:
    """Set every port's variable from `tensors[prefix + name]`; names the file, the
    tensor and both shapes when one does not fit."""
    for name, port in ports.items():
        stored = tensors.get(prefix + name)
        try:
            value = port.to_keras(stored)
        except ValueError:  # a reshape that cannot fit
            value = None
        if value is None or tuple(value.shape) != tuple(port.variable.shape):
            raise CheckpointError(
                f"{tensors.source}: {prefix + name} has shape {tuple(stored.shape)}, which "
                f"does not fit the model's {port.variable.path} {tuple(port.variable.shape)}")
        port.variable.assign(value.astype(port.variable.dtype))


def load_backbone_weights(backbone, folder) -> None:
    """Load a Hugging Face BERT folder's encoder weights into a keras-hub `BertBackbone`
    (its pooler too when the checkpoint has one; else the pooler keeps its
    initialisation, as transformers does for `BertModel` on such a checkpoint)."""
    tensors = Tensors(folder)
    pooler = f"{tensors.prefix}pooler.dense.weight" in tensors
    assign(backbone_weights(backbone, pooler=pooler), tensors, tensors.prefix)


