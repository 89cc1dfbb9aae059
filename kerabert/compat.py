"""Every reach into private internals of keras, keras-hub and tensorflow-text, in one place.

kerabert pins these libraries (`pyproject.toml`), but a few things it needs have no
public API: the sublayers of keras-hub's `TransformerEncoder` and `MaskedLMHead` (to
load and save checkpoint weights by name), the `tf.Variable` behind a Keras
variable and the trackable of an `ExportArchive` (to save each weight once in a
SavedModel), and a few `keras.Model` internals (`tf.distribute` with one replica per
step, LoRA state). Each is wrapped in a
small function here, and `tests/test_compat.py` checks that each private thing still
exists with the shape kerabert expects, so moving a pin fails one named test rather
than a training run.

Reaches left in modules owned elsewhere (to move here when those are next changed):
`kerabert/training.py` (`model._initial_epoch`).
"""

from __future__ import annotations

from typing import Any

#: keras-hub `TransformerEncoder` sublayers kerabert reads and writes (BERT checkpoints).
ENCODER_SUBLAYERS = {
    "self_attention": "_self_attention_layer",
    "self_attention_layer_norm": "_self_attention_layer_norm",
    "intermediate_dense": "_feedforward_intermediate_dense",
    "output_dense": "_feedforward_output_dense",
    "output_layer_norm": "_feedforward_layer_norm",
}

#: keras-hub `MaskedLMHead` weights, by the names of kerabert's head-weights file.
MASKED_LM_HEAD_WEIGHTS = {
    "dense_kernel": ("_intermediate_dense", "kernel"),
    "dense_bias": ("_intermediate_dense", "bias"),
    "norm_gamma": ("_intermediate_layer_norm", "gamma"),
    "norm_beta": ("_intermediate_layer_norm", "beta"),
    "output_bias": ("_bias", None),
}


def encoder_sublayers(block: Any) -> dict[str, Any]:
    """A keras-hub `TransformerEncoder`'s sublayers, by `ENCODER_SUBLAYERS`' names."""
    return {name: getattr(block, attribute) for name, attribute in ENCODER_SUBLAYERS.items()}


def masked_lm_head_variables(head_layer: Any) -> dict[str, Any]:
    """A keras-hub `MaskedLMHead` layer's variables, by `MASKED_LM_HEAD_WEIGHTS`' names."""
    out = {}
    for name, (attribute, weight) in MASKED_LM_HEAD_WEIGHTS.items():
        value = getattr(head_layer, attribute)
        out[name] = getattr(value, weight) if weight else value
    return out


def backend_variable(variable: Any) -> Any:
    """The `tf.Variable` behind a Keras variable (the object itself if it is one)."""
    return getattr(variable, "_value", variable)


def export_archive_trackable(archive: Any) -> Any:
    """The trackable a `keras.export.ExportArchive` saves (holding its tracked variables)."""
    return archive._tf_trackable


def symbolic_build(model: Any, data_batch: Any) -> None:
    """Build a model's compiled metrics, loss and optimizer variables on a data batch."""
    model._symbolic_build(data_batch=data_batch)


def distribute_strategy(model: Any) -> Any:
    """The `tf.distribute` strategy Keras recorded on a model (None outside one)."""
    return model._distribute_strategy


def set_distribute_strategy(model: Any, strategy: Any) -> None:
    """Set the strategy Keras reads when it builds the model's step functions."""
    model._distribute_strategy = strategy


def lora_rank(backbone: Any) -> Any:
    """The LoRA rank a keras-hub backbone was enabled with (None when it is not)."""
    return getattr(backbone, "_lora_rank", None)


def flatten_layers(model: Any) -> list[Any]:
    """Every layer nested in `model` (not itself), depth first, as Keras tracks them."""
    return list(model._flatten_layers(include_self=False))


def tf2onnx_collecting_optimizers(collect: bool = True) -> dict[str, Any]:
    """tf2onnx's ONNX graph optimizers, each followed by a garbage collection (with
    `collect`; without it, tf2onnx's own list).

    tf2onnx deep-copies the whole graph, constants included, before every optimizer, and
    the copies are reference cycles made of few, large objects, so Python's collector
    rarely runs: for a 91 MB model the copies grew the process by 4.4 GB (6.4 GB peak
    for the conversion). Collecting after each optimizer keeps the peak at 2.4 GB with
    the same graph. `tf2onnx.optimizer._get_optimizers` is the only list of them.
    """
    import gc

    from tf2onnx import optimizer

    def collecting(factory):
        class Collecting(factory):
            def optimize(self, graph, iteration):
                try:
                    return super().optimize(graph, iteration)
                finally:
                    gc.collect()

        Collecting.__name__ = factory.__name__
        return Collecting

    return {name: collecting(factory) if collect else factory
            for name, factory in optimizer._get_optimizers().items()}


def freeze_function(function: Any) -> Any:
    """A concrete function's graph with its variables as constants: the `GraphDef`
    tf2onnx converts, frozen as `tf2onnx.tf_loader.from_function` freezes it but without
    the grappler pass it runs next.

    That pass gave the same ONNX graph for a fine-tuned all-MiniLM-L6-v2 (550 nodes,
    outputs equal to 0.0), while its copies of the graph, weights included, raised the
    export's peak from 2.3 to 2.9 GB; the ONNX export tests check every head without it.
    TensorFlow's `convert_variables_to_constants_v2` has no public equivalent.
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    from tf2onnx import tf_loader

    frozen = convert_variables_to_constants_v2(function, lower_control_flow=False,
                                               aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    del frozen
    return tf_loader.fix_freezing_errors_part2(graph_def)


def tf2onnx_convert_frozen(frozen_graph: Any, **kwargs: Any) -> Any:
    """tf2onnx's conversion of a frozen GraphDef (what `from_function` runs after
    freezing); `tf2onnx.convert._convert_common` is the only entry that takes the
    optimizer list. Returns `(model_proto, external_tensor_storage)`."""
    from tf2onnx import convert

    return convert._convert_common(frozen_graph, **kwargs)


def byte_pair_words(text: Any) -> Any:
    """keras-hub's split of `[batch]` strings into GPT-2/RoBERTa words (`[batch, (words)]`),
    which spell the strings byte for byte: the `६` markers keras-hub inserts to emulate
    the regex's lookahead are removed, also where a number swallowed one."""
    import tensorflow as tf
    from keras_hub.src.tokenizers.byte_pair_tokenizer import split_strings_for_bpe

    words = split_strings_for_bpe(text)
    words = tf.ragged.map_flat_values(tf.strings.regex_replace, words, "\u096c", "")
    return tf.ragged.boolean_mask(words, words != "")


def byte_pair_merge(tokenizer: Any, words: Any) -> Any:
    """Ids `[words, (pieces)]` of `[words]` strings, merged by a keras-hub
    `BytePairTokenizer` (its word cache and merge loop, as its `tokenize` runs them after
    splitting)."""
    import tensorflow as tf

    tokenizer._maybe_initialized_tf()
    cached = tokenizer.cache.lookup(words)
    unseen = cached == ""

    def merge_unseen():
        tokenizer._bpe_merge_and_update_cache_tf(tf.boolean_mask(words, unseen))
        return tokenizer.cache.lookup(words)

    merged = tf.cond(tf.reduce_any(unseen & (words != "")), merge_unseen, lambda: cached)
    return tokenizer.token_to_id_map.lookup(tf.strings.split(merged, sep=" "))
