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


def convert(model, path, *, opset=DEFAULT_OPSET):
    """Convert the numeric model to ONNX at `path`; returns the `onnx.ModelProto`."""
    import tf2onnx

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

    proto, _ = tf2onnx.convert.from_function(
        numeric, input_signature=signature, opset=opset,
        custom_op_handlers={"Erfc": (_erfc, [])},
    )
    _name_dimensions(proto)
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
    """int8 weights for MatMul/Gemm (onnxruntime's dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_quantize

    ort_quantize(str(path), str(quantized_path), weight_type=QuantType.QInt8)


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


def write(model, directory, *, quantize=None, opset=DEFAULT_OPSET, **unused):
    """Write `model.onnx`, `vocabulary.txt`, `tokenizer.json`; returns model-card facts."""
    import tempfile
    from pathlib import Path

    import onnxruntime

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"ONNX quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    directory = Path(directory)
    if quantize:
        with tempfile.TemporaryDirectory(prefix="kerabert-onnx-") as scratch:
            convert(model, Path(scratch) / MODEL_FILE, opset=opset)
            quantize_dynamic(Path(scratch) / MODEL_FILE, directory / MODEL_FILE)
    else:
        convert(model, directory / MODEL_FILE, opset=opset)
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
        "quantization": "dynamic int8 weights (onnxruntime)" if quantize else "none (float32)",
        "requires": ["tokenization outside the model: kerabert.export.client reads "
                     f"{VOCABULARY_FILE} and {TOKENIZER_FILE}"],
    }
