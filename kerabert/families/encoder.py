"""`EncoderBackbone`: any keras-hub encoder behind BERT's inputs and outputs.

kerabert's heads, data pipeline and exports speak BERT's interface: three int32 inputs
(`token_ids`, `segment_ids`, `padding_mask`) and two outputs (`sequence_output`,
`pooled_output`). keras-hub's DistilBERT, RoBERTa, XLM-RoBERTa and DeBERTa-v3 backbones
take no segment ids and return only the sequence; ELECTRA and ALBERT return both.
`EncoderBackbone` wraps one of them, unchanged, into that interface: `segment_ids` is
passed on where the encoder has segment embeddings, and a model without a pooler gets
one (`pooled_dense`, tanh over the first token, trained with the task), as a BERT
checkpoint without a pooler does.

Example:
```python
encoder = keras_hub.models.DistilBertBackbone(
    vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
    max_sequence_length=64)
backbone = EncoderBackbone(encoder)
sorted(backbone.output)  # ['pooled_output', 'sequence_output']
```
"""

from __future__ import annotations

import keras
import keras_hub

from kerabert import compat, hf_folder


@keras.saving.register_keras_serializable(package="kerabert")
class EncoderBackbone(keras_hub.models.Backbone):
    """A keras-hub encoder with BERT's three inputs and two outputs.

    Args:
        encoder: a keras-hub backbone (or its serialized config) whose inputs include
            `token_ids` and `padding_mask`.
        hidden_activation: the feed-forward activation to use instead of the encoder's
            built-in one (`"gelu"`, `"gelu_approximate"`, `"relu"`), or `None`.
        **kwargs: `keras_hub.models.Backbone` arguments (`name`, `trainable`).

    Example:
    ```python
    backbone = EncoderBackbone(keras_hub.models.RobertaBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64))
    ```
    """

    def __init__(self, encoder, hidden_activation=None, dtype=None, **kwargs):
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        if hidden_activation is not None:
            set_feedforward_activation(encoder, hidden_activation)
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ("token_ids", "segment_ids", "padding_mask")}
        takes = set(encoder.input) if isinstance(encoder.input, dict) else set()
        outputs = encoder({name: inputs[name] for name in inputs if name in takes})
        pooled_dense = None
        if isinstance(outputs, dict):
            sequence, pooled = outputs["sequence_output"], outputs.get("pooled_output")
        else:
            sequence, pooled = outputs, None
        if pooled is None:
            pooled_dense = keras.layers.Dense(
                encoder.hidden_dim, activation="tanh", dtype=encoder.dtype_policy,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="pooled_dense")
            pooled = pooled_dense(sequence[:, 0, :])
        super().__init__(inputs=inputs,
                         outputs={"sequence_output": sequence, "pooled_output": pooled},
                         dtype=encoder.dtype_policy, **kwargs)
        self.encoder = encoder
        self.hidden_activation = hidden_activation
        self.pooled_dense = pooled_dense or getattr(encoder, "pooled_dense", None)
        self.token_embedding = encoder.token_embedding
        for name in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                     "max_sequence_length", "dropout"):
            setattr(self, name, getattr(encoder, name))
        self.vocabulary_size = encoder.token_embedding.input_dim

    @property
    def family(self):
        """The wrapped keras-hub class name (e.g. `"DistilBertBackbone"`)."""
        return type(self.encoder).__name__

    def get_config(self):
        config = super().get_config()
        config.update({"encoder": keras.saving.serialize_keras_object(self.encoder),
                       "hidden_activation": self.hidden_activation})
        return config


def wrap(encoder, activation, built_in):
    """`EncoderBackbone(encoder)`, with `activation` swapped in where keras-hub's blocks
    compute `built_in` instead (kerabert's names: `"gelu"` exact, `"gelu_approximate"`)."""
    return EncoderBackbone(encoder, hidden_activation=None if activation == built_in
                           else activation)


def transformer_blocks(encoder):
    """The encoder's blocks in call order (ALBERT's groups flattened)."""
    blocks = []
    for item in encoder.transformer_layers:
        blocks.extend(item if isinstance(item, (list, tuple)) else [item])
    return blocks


def set_feedforward_activation(encoder, name):
    """Give every keras-hub `TransformerEncoder` block of `encoder` the activation
    `name` (its functional graph calls the layers again at run time)."""
    activation = hf_folder.activation(name)
    for block in transformer_blocks(encoder):
        block.activation = activation
        compat.encoder_sublayers(block)["intermediate_dense"].activation = activation
