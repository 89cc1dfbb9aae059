"""The serving graph of a task model: raw strings in, decoded outputs out.

One generic mechanism for every head that implements the contract (plugin heads
included): the head's raw `fields` -> `head.preprocessor(tokenizer, sequence_length)`
-> the Keras model -> `head.serving_outputs(outputs, features)`, all TensorFlow ops.
Each export format builds its artifact from these functions.
"""

from __future__ import annotations

import tensorflow as tf

from kerabert.data.pipeline import trim_features
from kerabert.heads.base import Head


class ExportError(ValueError):
    """A model or option that cannot be exported; the message says what to change."""


def check_exportable(model):
    """Raise `ExportError` unless `model` is a kerabert task whose head can decode in-graph."""
    head = getattr(model, "head", None)
    if head is None or not hasattr(model, "tokenizer"):
        raise ExportError(
            f"only kerabert task models can be exported (got {type(model).__name__}); "
            "build one with kerabert.build_model or load one with kerabert.load_model"
        )
    implementation = getattr(type(head), "serving_outputs", None)
    if implementation is None or implementation is Head.serving_outputs:
        raise ExportError(
            f"head {head.name!r} ({type(head).__module__}.{type(head).__name__}) does not "
            "implement serving_outputs(outputs, features), so its outputs cannot be decoded "
            "inside an exported model; implement it (see kerabert/heads/base.py) to export"
        )
    return head


def text_input_specs(head):
    """`{field: TensorSpec([None], string)}`: one batch of raw strings per field."""
    return {field: tf.TensorSpec([None], tf.string, name=field) for field in head.fields}


def id_input_specs(model):
    """`{name: TensorSpec}` of the numeric model's inputs (token ids and head extras)."""
    specs = {}
    for name, tensor in model.input.items():
        shape = [None] * len(tensor.shape)
        specs[name] = tf.TensorSpec(shape, tf.as_dtype(tensor.dtype), name=name)
    return specs


def output_dict(model, outputs):
    """Model outputs as a dict: a single tensor is named after the model's output layer."""
    if isinstance(outputs, dict):
        return dict(outputs)
    if isinstance(outputs, (list, tuple)):
        names = model.output_names if hasattr(model, "output_names") else None
        names = names or [f"output_{i}" for i in range(len(outputs))]
        return dict(zip(names, outputs))
    return {output_name(model): outputs}


def output_name(model):
    """The name of a single-output model's output (e.g. `logits`)."""
    names = getattr(model, "output_names", None)
    if names and len(names) == 1:
        return names[0]
    return "outputs"


def trim_to_longest(features, sequence_length):
    """Cut per-token features to the batch's longest row: serving batches are often
    short sentences, and attention over 128 padded positions would cost several times
    more than over the real tokens (`kerabert.data.pipeline.trim_features`)."""
    return trim_features(features, sequence_length)[0]


def make_text_fn(model, trim=True):
    """A function `{field: strings}` -> the head's decoded serving outputs."""
    head = check_exportable(model)
    preprocessor = head.preprocessor(model.tokenizer, model.sequence_length)
    input_names = list(model.input.keys())

    def serve_text(inputs):
        features = preprocessor({field: inputs[field] for field in head.fields})[0]
        if trim:
            features = trim_to_longest(features, model.sequence_length)
        outputs = model({name: features[name] for name in input_names}, training=False)
        return dict(head.serving_outputs(outputs, features))

    return serve_text, preprocessor


def make_ids_fn(model):
    """A function `{token_ids, segment_ids, padding_mask, ...}` -> the model's raw outputs."""

    def serve_ids(inputs):
        outputs = model({name: inputs[name] for name in model.input.keys()}, training=False)
        return output_dict(model, outputs)

    return serve_ids
