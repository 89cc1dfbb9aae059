"""TFLite with the tokenizer inside: raw strings in, decoded outputs out.

Converted with `TFLiteConverter.from_saved_model` (`from_keras_model` and
`from_concrete_functions` misbehave with Keras 3) from the raw-string signature, using
TFLite builtins only plus tensorflow-text's TFLite kernels as custom ops (no Flex /
Select-TF ops, which most runtimes lack). Run it with

```python
import tensorflow_text
from ai_edge_litert.interpreter import InterpreterWithCustomOps

interpreter = InterpreterWithCustomOps(
    custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
    model_path="model.tflite", num_threads=2)  # LiteRT uses one thread unless told
runner = interpreter.get_signature_runner("serving_default")
runner(text=np.array(["A fine film."], dtype=object))
```

`quantize="int8"` applies dynamic-range quantization: int8 weights, float activations.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf

from kerabert.export import savedmodel
from kerabert.export.serving import ExportError

MODEL_FILE = "model.tflite"
QUANTIZATIONS = (None, "int8")


def convert(model, *, quantize=None, text_signature=True):
    """The `.tflite` bytes of `model`'s raw-string serving signature (of its token-ids
    signature with `text_signature=False`: no tokenizer inside)."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"TFLite quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    # Tables of the preprocessor that serving never reads (e.g. label -> id for training
    # targets) would otherwise be converted into ops no TFLite runtime resolves.
    archive, _ = savedmodel.build_archive(model, text_signature=text_signature,
                                          track_preprocessor=False)
    with tempfile.TemporaryDirectory(prefix="kerabert-tflite-") as directory:
        archive.write_out(directory, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            directory, signature_keys=[savedmodel.TEXT_SIGNATURE]
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = True  # tensorflow-text's kernels, checked below
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()


def usable_cores():
    """The CPU cores this process may run on (its affinity mask, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def interpreter(model_content=None, model_path=None, num_threads=None):
    """A LiteRT interpreter with tensorflow-text's TFLite kernels registered.

    Args:
        model_content, model_path: the `.tflite` bytes or file.
        num_threads: CPU threads for the kernels (XNNPACK). Default: every usable
            core. LiteRT's own default is a single thread, which measured 1.8x
            slower at batch 32 on the 2-core benchmark machine (BENCHMARKS.md).
    """
    import tensorflow_text

    try:
        from ai_edge_litert.interpreter import InterpreterWithCustomOps
    except ImportError:  # older installs: TensorFlow's own (deprecated) interpreter
        from tensorflow.lite.python.interpreter import InterpreterWithCustomOps
    return InterpreterWithCustomOps(
        custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
        model_content=model_content,
        model_path=None if model_path is None else str(model_path),
        num_threads=usable_cores() if num_threads is None else num_threads,
    )


def check_runs(content, fields, id_specs=None):
    """Run the converted model once; an op no kernel resolves becomes an `ExportError`.

    `fields` are the raw-text inputs; `id_specs` (`{name: TensorSpec}`) the inputs of a
    token-ids model instead.

    Returns:
        `(inputs, outputs)`: `{name: (dtype, shape)}` of the serving signature, with -1
        for dynamic dimensions.
    """
    runner = interpreter(model_content=content).get_signature_runner(savedmodel.TEXT_SIGNATURE)
    if id_specs is not None:
        sample = {name: np.zeros([1] + [8] * (len(spec.shape) - 1), spec.dtype.as_numpy_dtype)
                  for name, spec in id_specs.items()}
    else:
        sample = {field: np.array(["kerabert export check ."], dtype=object)
                  for field in fields}
    try:
        runner(**sample)
    except RuntimeError as e:
        raise ExportError(
            f"the TFLite model does not run with builtins + tensorflow-text kernels: {e}"
        ) from e
    describe = lambda details: {  # noqa: E731
        name: (np.dtype(d["dtype"]).name if d["dtype"] is not np.bytes_ else "string",
               [int(x) for x in d["shape_signature"]])
        for name, d in details.items()
    }
    return describe(runner.get_input_details()), describe(runner.get_output_details())


def write(model, directory, *, quantize=None, text_signature=True, **unused):
    """Write `model.tflite` into `directory`; returns the model-card facts."""
    from kerabert.export.serving import id_input_specs

    content = convert(model, quantize=quantize, text_signature=text_signature)
    inputs, outputs = check_runs(content, model.head.fields,
                                 None if text_signature else id_input_specs(model))
    with open(f"{directory}/{MODEL_FILE}", "wb") as f:
        f.write(content)
    return {
        "signatures": {savedmodel.TEXT_SIGNATURE: (inputs, outputs)},
        "quantization": "dynamic-range int8 weights" if quantize else "none (float32)",
        "requires": ["tensorflow-text TFLite kernels "
                     "(tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)"]
        if text_signature else ["token ids from the model's tokenizer (none inside)"],
    }
