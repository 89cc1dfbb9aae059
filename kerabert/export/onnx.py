"""ONNX through tf2onnx for the numeric model, with the tokenizer's files beside it.

tensorflow-text ops have no ONNX equivalent, so the `.onnx` graph starts at token ids
(`token_ids`, `segment_ids`, `padding_mask`, plus any inputs the head adds) and ends at
the model's raw outputs (e.g. `logits`). Beside it go `vocabulary.txt` and
`tokenizer.json` (normalization, special tokens, sequence length, fields), which
`kerabert.export.client` reads to tokenize exactly as the in-graph tokenizer does,
without TensorFlow:

```python
from kerabert.export.client import OnnxModel

model = OnnxModel("savedmodels/sst2/3")
model.predict(text=["A fine film."])
```
"""

from __future__ import annotations

import gc
import json

import numpy as np
import tensorflow as tf

from kerabert.export import serving
from kerabert.export.serving import ExportError

MODEL_FILE = "model.onnx"
VOCABULARY_FILE = "vocabulary.txt"
TOKENIZER_FILE = "tokenizer.json"
DEFAULT_OPSET = 17
QUANTIZATIONS = (None, "int8")


def _erfc(ctx, node, name, args):
    """Erfc(x) = 1 - Erf(x): the exact GELU lowers to Erfc, which tf2onnx lacks."""
    from tf2onnx import utils

    np_dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.output[0]))
    node.type = "Erf"
    one = ctx.make_const(utils.make_name("erfc_one"), np.array(1, np_dtype))
    ctx.insert_new_node_on_output(
        "Sub", node.output[0], inputs=[one.output[0], node.output[0]],
        name=utils.make_name("erfc"),
    )


# Weights from which the graph copies of tf2onnx's optimizers are collected after each
# one. A full collection costs ~0.5 s with TensorFlow loaded, and there are ~48 of them:
# two thirds of a tiny model's export, for copies of a few hundred kilobytes.
COLLECT_FROM_BYTES = 16 * 2**20


def _weight_bytes(model):
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)


def convert(model, path, *, opset=DEFAULT_OPSET, fuse=True):
    """Convert the numeric model to ONNX at `path`; returns the `onnx.ModelProto`.

    Args:
        model: the kerabert task.
        path: the `.onnx` file to write.
        opset: the ONNX opset (17 or newer: `LayerNormalization`).
        fuse: rewrite layer norms, GELUs and attention projections into the forms
            onnxruntime fuses and quantizes (`kerabert.export.onnx_fusion`).
    """
    from tf2onnx.convert import tensor_names_from_structed

    from kerabert import compat
    from kerabert.export import onnx_fusion

    if opset < 17:
        raise ExportError(f"ONNX opset {opset} is too old: use 17 or newer")
    serving.check_exportable(model)
    specs = serving.id_input_specs(model)
    names = list(specs)
    ids_fn = serving.make_ids_fn(model)
    signature = [specs[name] for name in names]

    # Positional arguments named after the inputs give the ONNX inputs those names.
    @tf.function(input_signature=signature, autograph=False)
    def numeric(*args):
        return ids_fn(dict(zip(names, args)))

    # tf2onnx's `from_function` without its grappler pass, then its conversion with a
    # garbage collection after each graph optimizer: for a 91 MB model its graph copies
    # took 6.4 GB without the collections, grappler 0.6 GB more (kerabert.compat).
    function = numeric.get_concrete_function(*signature)
    inputs = [t.name for t in function.inputs if t.dtype != tf.dtypes.resource]
    outputs = [t.name for t in function.outputs if t.dtype != tf.dtypes.resource]
    renames = tensor_names_from_structed(function, inputs, outputs)
    with tf.device("/cpu:0"):
        frozen = compat.freeze_function(function)
        proto, _ = compat.tf2onnx_convert_frozen(
            frozen, name=function.name, continue_on_error=True, opset=opset,
            custom_op_handlers={"Erfc": (_erfc, [])}, input_names=inputs,
            output_names=outputs, tensors_to_rename=renames,
            optimizers=compat.tf2onnx_collecting_optimizers(
                collect=_weight_bytes(model) >= COLLECT_FROM_BYTES))
    del frozen
    gc.collect()
    _name_dimensions(proto)
    if fuse:
        onnx_fusion.fuse(proto)
    import onnx

    onnx.save(proto, str(path))
    return proto


def _name_dimensions(proto):
    """Give dynamic dimensions readable names (`batch`, `sequence`) instead of `unk__12`."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, dim in enumerate(dims):
            if not dim.HasField("dim_value"):
                dim.dim_param = "batch" if index == 0 else "sequence" if index == 1 else f"dim{index}"


def quantize_dynamic(path, quantized_path):
    """int8 weights per output channel, int8 activations per row (token): onnxruntime's
    dynamic quantization, then `_quantize_rows`.

    onnxruntime's `quantize_dynamic` defaults (one int8 scale per weight matrix, and a
    `DynamicQuantizeLinear` giving each `MatMulInteger` input one uint8 scale for the
    whole tensor, every token of every example in the batch, padding included) were far
    less faithful than TFLite's int8 and made a prediction depend on the other examples
    in its batch: the largest activation anywhere in the batch sets the step for every
    token, 2-8x the median per-token step in the MiniLM models. Per-channel weights
    and per-row activations (what TFLite's dynamic-range kernels do) bring the real SQuAD
    and CoNLL models from 59% / 90% to 92% / 93% of outputs identical to Keras (TFLite
    int8's level), and results no longer change with the batch, for about 10% less int8
    throughput (docs/benchmarks/export.md, "ONNX int8: batch dependence and fidelity").
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_quantize

    ort_quantize(str(path), str(quantized_path), weight_type=QuantType.QInt8,
                 per_channel=True)
    proto = onnx.load(str(quantized_path))
    _quantize_rows(proto)
    onnx.save(proto, str(quantized_path))


def _quantize_rows(proto):
    """Replace each `DynamicQuantizeLinear` that only feeds `MatMulInteger`s by symmetric
    per-row quantization over the last axis: scale = max|x| / 127 per row, q = round(x /
    scale) + 128 as uint8 with zero point 128. The outputs keep their names and types, so
    the `MatMulInteger` (uint8 x int8, onnxruntime's fast kernel) and the rescaling
    `Mul`s after it stay as onnxruntime wrote them; the scale now broadcasts per row.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    constants = {"rows_epsilon": np.float32(1e-12), "rows_127": np.float32(127),
                 "rows_128": np.float32(128)}
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        constants["rows_last_axis"] = np.array([-1], np.int64)
    nodes, rewritten = [], 0
    for node in graph.node:
        if (node.op_type != "DynamicQuantizeLinear"
                or consumers.get(node.output[0]) != {"MatMulInteger"}):
            nodes.append(node)
            continue
        x, (quantized, scale, zero_point) = node.input[0], node.output
        prefix = f"{node.name or quantized}_rows"
        if opset >= 18:
            reduce = helper.make_node("ReduceMax", [f"{prefix}_abs", "rows_last_axis"],
                                      [f"{prefix}_max"], keepdims=1)
        else:
            reduce = helper.make_node("ReduceMax", [f"{prefix}_abs"], [f"{prefix}_max"],
                                      axes=[-1], keepdims=1)
        nodes += [
            helper.make_node("Abs", [x], [f"{prefix}_abs"]),
            reduce,
            helper.make_node("Max", [f"{prefix}_max", "rows_epsilon"], [f"{prefix}_range"]),
            helper.make_node("Div", [f"{prefix}_range", "rows_127"], [scale]),
            helper.make_node("Div", [x, scale], [f"{prefix}_scaled"]),
            helper.make_node("Round", [f"{prefix}_scaled"], [f"{prefix}_rounded"]),
            helper.make_node("Add", [f"{prefix}_rounded", "rows_128"], [f"{prefix}_shifted"]),
            helper.make_node("Cast", [f"{prefix}_shifted"], [quantized], to=TensorProto.UINT8),
        ]
        graph.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), zero_point))
        rewritten += 1
    if rewritten:
        graph.initializer.extend(numpy_helper.from_array(np.asarray(value), name)
                                 for name, value in constants.items())
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten


def tokenizer_settings(model):
    """What a client needs to tokenize and pack like the in-graph preprocessor."""
    tokenizer = model.tokenizer
    return {
        "vocabulary": VOCABULARY_FILE,
        "lowercase": bool(tokenizer.lowercase),
        "strip_accents": bool(tokenizer.lowercase),  # FastBertTokenizer does both or neither
        "unknown_token": tokenizer.unknown_token,
        "cls_token": tokenizer.cls_token,
        "sep_token": tokenizer.sep_token,
        "pad_token": tokenizer.pad_token,
        "max_bytes_per_word": int(tokenizer.max_bytes_per_word),
        "sequence_length": int(model.sequence_length),
        "fields": list(model.head.fields),
        "inputs": list(model.input.keys()),
        "truncation": "one segment: cut at the end; two: the longer gives way first, "
                      "and a segment shorter than half the budget is never cut",
    }


def write(model, directory, *, quantize=None, opset=DEFAULT_OPSET, onnx_fusion=True, **unused):
    """Write `model.onnx`, `vocabulary.txt`, `tokenizer.json`; returns model-card facts."""
    import tempfile
    from pathlib import Path

    import onnxruntime

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"ONNX quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    directory = Path(directory)
    if quantize:
        with tempfile.TemporaryDirectory(prefix="kerabert-onnx-") as scratch:
            convert(model, Path(scratch) / MODEL_FILE, opset=opset, fuse=onnx_fusion)
            quantize_dynamic(Path(scratch) / MODEL_FILE, directory / MODEL_FILE)
    else:
        convert(model, directory / MODEL_FILE, opset=opset, fuse=onnx_fusion)
    with open(directory / VOCABULARY_FILE, "w", encoding="utf-8") as f:
        f.write("\n".join(model.tokenizer.vocabulary) + "\n")
    with open(directory / TOKENIZER_FILE, "w", encoding="utf-8") as f:
        json.dump(tokenizer_settings(model), f, indent=2)
    # Loading it once proves onnxruntime accepts every op.
    session = onnxruntime.InferenceSession(str(directory / MODEL_FILE),
                                           providers=["CPUExecutionProvider"])
    describe = lambda values: {v.name: (v.type, list(v.shape)) for v in values}  # noqa: E731
    return {
        "signatures": {"onnx": (describe(session.get_inputs()), describe(session.get_outputs()))},
        "opset": opset,
        "quantization": ("int8 weights per channel, int8 activations per row, computed at "
                         "run time (onnxruntime dynamic quantization)") if quantize
        else "none (float32)",
        "requires": ["tokenization outside the model: kerabert.export.client reads "
                     f"{VOCABULARY_FILE} and {TOKENIZER_FILE}"],
    }
