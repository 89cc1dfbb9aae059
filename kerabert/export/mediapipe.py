"""TFLite for MediaPipe's `TextClassifier` (Android, iOS, web, Python): token ids in.

MediaPipe tokenizes in its own C++ code, so the model it loads starts at token ids:
three int32 inputs `[1, sequence_length]` named as Model Maker names them
(`input_word_ids`, `input_mask`, `input_type_ids`), one float32 output of class
probabilities `[1, num_labels]`, TFLite builtins only (no custom ops), and TFLite
metadata, written with mediapipe's own `MetadataWriter.create_for_bert_model`, that
packs the WordPiece vocabulary (`vocab.txt`) and the label file (`labels.txt`) into the
`.tflite`. MediaPipe pads every text to `sequence_length` (the model's, at most its
backbone's positions), so a shorter `sequence_length` at export is faster on device.

```python
from mediapipe.tasks.python import text
from mediapipe.tasks.python.core.base_options import BaseOptions

classifier = text.TextClassifier.create_from_options(text.TextClassifierOptions(
    base_options=BaseOptions(model_asset_path="savedmodels/sst2/4/model.tflite")))
classifier.classify("A fine film.").classifications[0].categories[0].category_name
```

MediaPipe's tokenizer is not kerabert's: it lower-cases ASCII letters only and neither
applies Unicode normalization nor strips accents, so for an uncased checkpoint a word
with a non-ASCII letter (`café`, `naïve`, `Ｆilm`, Cyrillic capitals) becomes `[UNK]` on
device where kerabert's tokenizer finds `cafe`. Text in plain ASCII tokenizes
identically (checked on the SST-2 dev sentences in `tests/export/test_mediapipe.py`).

Only single-label classifiers over one text fit MediaPipe's text classifier (it takes
one string and ranks the labels); other heads are refused.
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import keras
import tensorflow as tf

from kerabert.export.serving import ExportError

MODEL_FILE = "model.tflite"
# Model Maker's names; MediaPipe's metadata writer finds the inputs by these.
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
OUTPUT_NAME = "probabilities"
QUANTIZATIONS = (None, "int8", "int8-full")
CALIBRATION_EXAMPLES = 200


def check_classifier(model):
    """Raise `ExportError` unless `model` is a single-label classifier of one text."""
    from kerabert.heads.classification import TextClassificationHead

    head = getattr(model, "head", None)
    if not isinstance(head, TextClassificationHead):
        raise ExportError(
            f"--format mediapipe is for classification heads (sentiment, "
            f"text-classification); head {getattr(head, 'name', None)!r} is not one: "
            "export it as tflite, savedmodel or onnx"
        )
    if head.multi_label:
        raise ExportError("--format mediapipe needs a single-label classifier: MediaPipe "
                          "ranks labels by score and has no per-label thresholds")
    if head.text_pair:
        raise ExportError("--format mediapipe takes one text; this head classifies text "
                          "pairs (export it as tflite or savedmodel)")
    return head


def convert(model, *, quantize=None, sequence_length=None, calibration=None):
    """The `.tflite` bytes (no metadata yet) of `model` on MediaPipe's three inputs.

    Args:
        model: a single-label classification `Task`.
        quantize: `None` (float32), `"int8"` (dynamic-range: int8 weights, float
            activations) or `"int8-full"` (int8 weights and activations, their ranges
            calibrated on `calibration`; ops without an int8 kernel stay float).
        sequence_length: the fixed input length (default: the model's).
        calibration: for `"int8-full"`, texts (`{"text": [...]}`) from the training data.
    """
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"mediapipe quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize == "int8-full" and not calibration:
        raise ExportError("int8-full quantization needs calibration texts (calibration_data"
                          "= / --calibration-data: e.g. the training file)")
    check_classifier(model)
    length = int(sequence_length or model.sequence_length)
    specs = [tf.TensorSpec([1, length], tf.int32, name=name) for name in INPUT_NAMES]

    def probabilities(token_ids, padding_mask, segment_ids):
        logits = model({"token_ids": token_ids, "padding_mask": padding_mask,
                        "segment_ids": segment_ids}, training=False)
        return {OUTPUT_NAME: tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", tf.function(probabilities), input_signature=specs)
    with tempfile.TemporaryDirectory(prefix="kerabert-mediapipe-") as directory:
        archive.write_out(directory, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            directory, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = False  # MediaPipe registers no custom kernels
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "int8-full":
            converter.representative_dataset = _representative(model, calibration, length)
        return converter.convert()


def _representative(model, calibration, length):
    """The calibration batches (one text each, as MediaPipe runs) for the converter."""
    packed = model.tokenizer.pack([model.tokenizer(tf.constant(calibration["text"]))], length)
    columns = {name: packed[key].numpy().astype("int32") for name, key in
               zip(INPUT_NAMES, ("token_ids", "padding_mask", "segment_ids"))}

    def batches():
        for row in range(len(calibration["text"])):
            yield {name: values[row:row + 1] for name, values in columns.items()}

    return batches


def calibration_texts(model, data, examples=CALIBRATION_EXAMPLES, seed=0, read_options=None):
    """`{field: [texts]}`: `examples` rows drawn (seeded) from training data for calibration
    (also used by the ONNX `int8-full` export)."""
    import numpy as np

    from kerabert.export.warmup import texts_from

    columns = texts_from(model, data, read_options)
    rows = len(next(iter(columns.values())))
    order = sorted(np.random.default_rng(seed).permutation(rows)[:examples])
    return {field: [values[i] for i in order] for field, values in columns.items()}


def add_metadata(content, vocabulary, labels):
    """`content` with MediaPipe's BERT text-classifier metadata (vocabulary, labels).

    Args:
        content: `.tflite` bytes from `convert`.
        vocabulary: the word pieces (index = token id).
        labels: the label names (index = class id).
    """
    writers = _metadata_writers()
    with tempfile.TemporaryDirectory(prefix="kerabert-mediapipe-") as directory:
        vocabulary_file = Path(directory) / "vocab.txt"
        vocabulary_file.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
        writer = writers.text_classifier.MetadataWriter.create_for_bert_model(
            bytearray(content),
            writers.metadata_writer.BertTokenizer(str(vocabulary_file)),
            writers.metadata_writer.Labels().add([str(label) for label in labels]),
            ids_name=f"serving_default_{INPUT_NAMES[0]}:0",
            mask_name=f"serving_default_{INPUT_NAMES[1]}:0",
            segment_name=f"serving_default_{INPUT_NAMES[2]}:0",
        )
        with_metadata, _ = writer.populate()
        del writer  # its __del__ cleans a scratch folder: now, not at interpreter exit
    return bytes(with_metadata)


_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def _metadata_writers():
    """mediapipe's metadata writers, importable also from the 1.x wheels.

    mediapipe 1.x wheels (1.2.3 here) moved their native code behind a C library but
    still import the old pybind `_pywrap_metadata_version` for one call,
    `GetMinimumMetadataParserVersion`, and do not ship it, so the writers fail to import.
    Only then is that module provided, by `minimum_parser_version`.
    """
    try:
        __import__(_VERSION_MODULE)
    except ImportError:
        parent = None
        for name in ("mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata",
                     "mediapipe.tasks.cc.metadata.python", _VERSION_MODULE):
            module = sys.modules.setdefault(name, types.ModuleType(name))
            if parent is not None:
                setattr(parent, name.rsplit(".", 1)[1], module)
            parent = module
        module.GetMinimumMetadataParserVersion = minimum_parser_version
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        text_classifier,
    )

    return types.SimpleNamespace(metadata_writer=metadata_writer,
                                 text_classifier=text_classifier)


def minimum_parser_version(metadata_buffer):
    """The oldest metadata parser that reads `metadata_buffer` (e.g. `"1.1.0"`).

    The same rule as MediaPipe's C++ `GetMinimumMetadataParserVersion`: the newest
    schema version among the fields used (vocabulary files 1.0.1, input/output process
    units and BERT/SentencePiece tokenizers 1.1.0, tensor groups 1.2.0, regex tokenizer
    1.2.1, audio properties 1.3.0, ScaNN index files 1.4.0, file versions 1.4.1).
    """
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    found = [(1, 0, 0)]

    def files(entries):
        for entry in entries or []:
            if entry.type == fb.AssociatedFileType.VOCABULARY:
                found.append((1, 0, 1))
            if entry.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                found.append((1, 4, 0))
            if entry.version is not None:
                found.append((1, 4, 1))

    def units(entries):
        options = fb.ProcessUnitOptions
        for entry in entries or []:
            if entry.optionsType in (options.BertTokenizerOptions,
                                     options.SentencePieceTokenizerOptions):
                found.append((1, 1, 0))
            if entry.optionsType == options.RegexTokenizerOptions:
                found.append((1, 2, 1))

    metadata = fb.ModelMetadataT.InitFromObj(
        fb.ModelMetadata.GetRootAsModelMetadata(bytes(metadata_buffer), 0))
    for subgraph in metadata.subgraphMetadata or []:
        for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
            files(tensor.associatedFiles)
            units(tensor.processUnits)
            if tensor.content is not None and (
                    tensor.content.contentPropertiesType == fb.ContentProperties.AudioProperties):
                found.append((1, 3, 0))
        files(subgraph.associatedFiles)
        for process_units in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if process_units is not None:
                found.append((1, 1, 0))
                units(process_units)
        if subgraph.inputTensorGroups is not None or subgraph.outputTensorGroups is not None:
            found.append((1, 2, 0))
    files(metadata.associatedFiles)
    return ".".join(map(str, max(found)))


def check_runs(content):
    """Run the model once with LiteRT's builtin ops only (no custom-op registrar).

    Returns:
        `(inputs, outputs)`: `{name: (dtype, shape)}` of the model's tensors.
    """
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # older installs: TensorFlow's own (deprecated) interpreter
        from tensorflow.lite.python.interpreter import Interpreter
    interpreter = Interpreter(model_content=content)
    try:
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.ones(detail["shape"], np.int32))
        interpreter.invoke()
    except RuntimeError as e:
        raise ExportError(f"the MediaPipe TFLite model does not run with builtin ops: {e}") from e
    describe = lambda details: {  # noqa: E731
        d["name"]: (np.dtype(d["dtype"]).name, [int(x) for x in d["shape"]]) for d in details}
    return (describe(interpreter.get_input_details()),
            describe(interpreter.get_output_details()))


def write(model, directory, *, quantize=None, calibration=None, **unused):
    """Write `model.tflite` (with MediaPipe metadata) into `directory`; returns card facts."""
    head = check_classifier(model)
    content = convert(model, quantize=quantize, calibration=calibration)
    inputs, outputs = check_runs(content)
    content = add_metadata(content, model.tokenizer.vocabulary, head.labels)
    with open(Path(directory) / MODEL_FILE, "wb") as f:
        f.write(content)
    return {
        "signatures": {"mediapipe": (inputs, outputs)},
        "quantization": {
            None: "none (float32)", "int8": "dynamic-range int8 weights",
            "int8-full": f"int8 weights and activations, ranges calibrated on "
                         f"{len((calibration or {}).get('text', []))} training texts"}[quantize],
        "requires": [
            "MediaPipe TextClassifier (tokenizes in its own code, from vocab.txt in the "
            "metadata: it lower-cases ASCII only and does not strip accents)",
        ],
    }
