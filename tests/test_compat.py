"""`kerabert.compat`: each private keras / keras-hub internal kerabert reaches still
exists with the shape kerabert expects. A failure here means a pinned library moved:
update `kerabert/compat.py` (and only it)."""

from __future__ import annotations

import inspect

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from kerabert import compat
from kerabert.testing import tiny_backbone

HIDDEN, VOCABULARY = 32, 50


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return tiny_backbone(VOCABULARY, 64)


def test_transformer_encoder_sublayers(backbone):
    block = backbone.get_layer("transformer_layer_0")
    assert isinstance(block, keras_hub.layers.TransformerEncoder)
    layers = compat.encoder_sublayers(block)
    assert set(layers) == set(compat.ENCODER_SUBLAYERS)
    attention = layers["self_attention"]
    for name in ("query_dense", "key_dense", "value_dense", "output_dense"):
        assert hasattr(attention, name), name
    assert tuple(layers["intermediate_dense"].kernel.shape) == (HIDDEN, 64)
    assert tuple(layers["output_dense"].kernel.shape) == (64, HIDDEN)
    for norm in ("self_attention_layer_norm", "output_layer_norm"):
        assert tuple(layers[norm].gamma.shape) == (HIDDEN,)
        assert tuple(layers[norm].beta.shape) == (HIDDEN,)
    # kerabert.backbone swaps the activation of this very layer (exact GELU).
    assert hasattr(layers["intermediate_dense"], "activation")


def test_masked_lm_head_variables(backbone):
    head = keras_hub.layers.MaskedLMHead(token_embedding=backbone.token_embedding,
                                         intermediate_activation="gelu")
    logits = head(tf.zeros((2, 8, HIDDEN)), tf.zeros((2, 3), tf.int32))
    assert tuple(logits.shape) == (2, 3, VOCABULARY)
    variables = compat.masked_lm_head_variables(head)
    assert set(variables) == set(compat.MASKED_LM_HEAD_WEIGHTS)
    shapes = {name: tuple(v.shape) for name, v in variables.items()}
    assert shapes == {"dense_kernel": (HIDDEN, HIDDEN), "dense_bias": (HIDDEN,),
                      "norm_gamma": (HIDDEN,), "norm_beta": (HIDDEN,),
                      "output_bias": (VOCABULARY,)}
    assert all(isinstance(v, keras.Variable) for v in variables.values())


def test_backend_variable_is_the_tf_variable():
    variable = keras.Variable(np.ones(3, np.float32))
    assert isinstance(compat.backend_variable(variable), tf.Variable)
    assert compat.backend_variable(variable) is not variable
    plain = tf.Variable(1.0)
    assert compat.backend_variable(plain) is plain


def test_export_archive_trackable_lists_the_tracked_variables():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    archive = keras.export.ExportArchive()
    archive.track(layer)
    tracked = compat.export_archive_trackable(archive)
    assert isinstance(tracked, tf.__internal__.tracking.AutoTrackable)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        assert isinstance(getattr(tracked, name), list), name
    assert len(tracked.variables) == 2


def test_model_build_and_distribute_internals():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    assert "data_batch" in inspect.signature(model._symbolic_build).parameters
    compat.symbolic_build(model, (np.zeros((2, 3), np.float32), np.zeros((2, 1), np.float32)))
    assert model.optimizer.built
    assert compat.distribute_strategy(model) is None  # outside any strategy
    compat.set_distribute_strategy(model, None)


def test_lora_rank_and_flatten_layers(backbone):
    layers = compat.flatten_layers(backbone)
    assert backbone not in layers
    assert backbone.get_layer("transformer_layer_0") in layers
    dense = [layer for layer in layers if isinstance(layer, keras.layers.EinsumDense)]
    assert dense, "the attention projections are nested EinsumDense layers"
    lora = tiny_backbone(VOCABULARY, 64)
    assert compat.lora_rank(lora) is None
    lora.enable_lora(2)
    assert compat.lora_rank(lora) == 2


def test_freeze_function_gives_constants_only():
    variable = tf.Variable([[1.0, 2.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)], autograph=False)
    def double(x):
        return x * variable

    graph_def = compat.freeze_function(double.get_concrete_function())
    ops = {node.op for node in graph_def.node}
    assert "Const" in ops and not ops & {"VarHandleOp", "ReadVariableOp", "ResourceGather"}
    assert isinstance(graph_def, tf.compat.v1.GraphDef)


def test_tf2onnx_optimizer_list_and_frozen_conversion_entry():
    from tf2onnx import convert, optimizer

    wrapped = compat.tf2onnx_collecting_optimizers()
    originals = optimizer._get_optimizers()
    assert list(wrapped) == list(originals) and "fold_constants" in wrapped
    assert all(issubclass(wrapped[name], originals[name]) for name in originals)
    parameters = inspect.signature(convert._convert_common).parameters
    assert {"frozen_graph", "optimizers", "custom_op_handlers"} <= set(parameters)
    assert any(p.kind is p.VAR_KEYWORD for p in parameters.values())  # opset, names, ..." 
