"""Calibrated (static) int8 for the ONNX export: `quantize="int8-full"`.

onnxruntime's `quantize_static` in QDQ format: int8 weights per output channel and
int8 activations whose ranges (min/max) are measured on texts from the training
data, fixed in the graph, instead of measured on every request as the dynamic
`quantize="int8"` does. Only `MatMul` and `Gemm` are quantized (most of the work; the
other ops stay float). The texts are packed by the model's own preprocessor, one
batch of 8 at a time, cut to the batch's longest row as serving does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerabert.export.serving import trim_to_longest

BATCH = 8
OPS = ["MatMul", "Gemm"]


class _Calibration:
    """An onnxruntime `CalibrationDataReader` over packed calibration texts."""

    def __init__(self, model, calibration):
        preprocessor = model.head.preprocessor(model.tokenizer, model.sequence_length)
        fields = list(model.head.fields)
        rows = len(calibration[fields[0]])
        self.batches = []
        for start in range(0, rows, BATCH):
            batch = {f: tf.constant(calibration[f][start:start + BATCH]) for f in fields}
            features = trim_to_longest(preprocessor(batch)[0], model.sequence_length)
            self.batches.append({name: features[name].numpy() for name in model.input})
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return self.batches[self.position - 1]

    def rewind(self):
        self.position = 0


def quantize(model, path, calibration):
    """Replace the float ONNX model at `path` by its calibrated int8 version.

    Args:
        model: the exported `Task` (its preprocessor packs the calibration texts).
        path: the float `model.onnx`, overwritten.
        calibration: `{field: [texts]}` from the training data.

    Returns:
        The card's quantization description.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader = type("Reader", (_Calibration, CalibrationDataReader), {})(model, calibration)
    path = Path(path)
    float_path = path.with_name(f".{path.stem}.float.onnx")
    os.replace(path, float_path)
    try:
        # Only the matrix products: with every op quantized, onnxruntime fuses the layer
        # norms' ReduceMean into a QLinearGlobalAveragePool that fails at run time
        # ("parameter out of computation range") on these activations.
        quantize_static(str(float_path), str(path), reader, quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8, op_types_to_quantize=OPS,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        float_path.unlink(missing_ok=True)
    return (f"MatMul/Gemm: int8 weights per channel and int8 activations with ranges "
            f"calibrated on "
            f"{len(next(iter(calibration.values())))} training texts (onnxruntime "
            "quantize_static, QDQ, min/max)")
