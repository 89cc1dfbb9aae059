"""TF Serving warmup requests: `assets.extra/tf_serving_warmup_requests` in a SavedModel.

TF Serving replays this file (a TFRecord of `tensorflow.serving.PredictionLog` protos)
when it loads a version and marks the version available only afterwards, so the first
user request does not pay for lazy initialization (graph optimization, kernel and
memory set-up per batch size). TF Serving reads at most 1000 records.

The requests are built from real texts: the validation data when the export is given
it (`warmup_data=` / `--warmup-data`), else the card's example texts for the head's
fields (`EXAMPLES`). They call `serving_default` with the raw strings, or with token ids
packed by the model's own preprocessor for a `text_signature=False` export, in the
batch sizes the batching configuration allows (`serving_config.BATCH_SIZES`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from kerabert.export.serving import ExportError
from kerabert.export import serving_config
from kerabert.export.serving_config import BATCH_SIZES

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving ignores the records after these
# Example texts for each raw field a head may have: the card's examples, and the warmup
# texts when no validation data is given.
EXAMPLES = {
    "text": ["a gorgeous, witty, seductive movie.", "the plot is dull and the acting worse.",
             "John Smith moved from London to Paris in 2019.",
             "it's not a bad film, just a forgettable one."],
    "text_pair": ["the film is a delight.", "nobody moved to Paris.",
                  "John lives in France.", "the movie was forgettable."],
    "question": ["Where does John live?", "When did he move?", "What is the film like?",
                 "Who moved to Paris?"],
    "context": ["John Smith moved from London to Paris in 2019 and lives there.",
                "John Smith moved from London to Paris in 2019.",
                "The film is gorgeous and witty, if a little long.",
                "John Smith moved from London to Paris in 2019."],
}


def available():
    """Whether the `PredictionLog` protos (`tensorflow-serving-api`) can be imported."""
    import importlib.util

    return importlib.util.find_spec("tensorflow_serving") is not None


def example_inputs(fields, count=None):
    """`{field: [texts]}`: the built-in example texts for `fields` (`EXAMPLES`)."""
    missing = [field for field in fields if field not in EXAMPLES]
    if missing:
        raise ExportError(f"no example texts for field(s) {missing}: pass warmup_data")
    rows = len(EXAMPLES["text"]) if count is None else count
    return {field: [EXAMPLES[field][i % len(EXAMPLES[field])] for i in range(rows)]
            for field in fields}


def texts_from(model, data, read_options=None):
    """`{field: [texts]}` from validation data: a file the head reads, or columns."""
    from kerabert.data import load_examples

    examples = load_examples(model.head, data, **(read_options or {}))
    columns = {field: [str(value) for value in examples[field]] for field in model.head.fields}
    if not columns[model.head.fields[0]]:
        raise ExportError(f"{data}: no examples for the warmup requests")
    return columns


def batches(columns, batch_sizes, records_per_size):
    """`[{field: [texts]}]`: `records_per_size` batches of each size, taken in turn."""
    fields = list(columns)
    total = len(columns[fields[0]])
    out, start = [], 0
    for size in batch_sizes:
        for _ in range(records_per_size):
            rows = [(start + i) % total for i in range(size)]
            out.append({field: [columns[field][r] for r in rows] for field in fields})
            start = (start + size) % total
    return out[:MAX_RECORDS]


def request_inputs(model, batch, text_signature=True):
    """`{name: np.ndarray}`: what `serving_default` takes for this batch of texts."""
    if text_signature:
        return {field: np.array([t.encode("utf-8") for t in texts], dtype=object)
                for field, texts in batch.items()}
    from kerabert.export.serving import trim_to_longest

    preprocessor = model.head.preprocessor(model.tokenizer, model.sequence_length)
    features = preprocessor({field: tf.constant(texts) for field, texts in batch.items()})[0]
    features = trim_to_longest(features, model.sequence_length)
    return {name: features[name].numpy() for name in model.input}


def prediction_log(model_name, inputs, signature="serving_default"):
    """A `PredictionLog` holding one `PredictRequest` (no response: TF Serving ignores it)."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))


def write(model, directory, *, model_name, columns=None, batch_sizes=BATCH_SIZES,
          records_per_size=4, text_signature=True):
    """Write the warmup file into the SavedModel `directory`.

    Args:
        model: the exported `Task`.
        directory: the SavedModel directory (the version folder).
        model_name: TF Serving's model name (the layout's folder name).
        columns: `{field: [texts]}` (default: `example_inputs`).
        batch_sizes: the batch sizes to warm up (the batching configuration's).
        records_per_size: requests per batch size (at most 1000 records in all).
        text_signature: whether `serving_default` takes raw strings.

    Returns:
        The card facts: file, records, batch sizes and where the texts came from.

    Example:
    ```python
    write(model, "savedmodels/sst2/3", model_name="sst2",
          columns={"text": ["a fine film", "a dull one"]})
    ```
    """
    try:
        import tensorflow_serving.apis  # noqa: F401
    except ImportError as e:
        raise ExportError("warmup requests need the PredictionLog protos: pip install "
                          "tensorflow-serving-api (kerabert's `deploy` extra)") from e
    source = "card examples" if columns is None else "validation data"
    columns = columns or example_inputs(model.head.fields)
    path = Path(directory) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    records = batches(columns, batch_sizes, records_per_size)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in records:
            inputs = request_inputs(model, batch, text_signature)
            writer.write(prediction_log(model_name, inputs).SerializeToString())
    return {"file": WARMUP_FILE, "records": len(records), "batch_sizes": list(batch_sizes),
            "texts": source}


def read(path):
    """The `PredictionLog` protos of a warmup file (for checks and replays)."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        logs.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
    return logs


def card_facts(model, root, name, text_signature=True):
    """What the card says about serving: versions a server needs, command, REST bodies.

    Args:
        model: the exported `Task`.
        root: the layout root the server mounts.
        name: TF Serving's model name.
        text_signature: whether `serving_default` takes raw strings (else token ids).
    """
    import tensorflow_text

    columns = example_inputs(model.head.fields, count=2)
    inputs = {key: value.tolist() for key, value in
              request_inputs(model, columns, text_signature).items()}
    if text_signature:
        inputs = {key: [v.decode("utf-8") for v in value] for key, value in inputs.items()}
    rows = len(next(iter(inputs.values())))
    return {
        "tensorflow": tf.__version__,
        "tensorflow_text": tensorflow_text.__version__ if text_signature else None,
        "docker": serving_config.docker_command(root),
        "url": f"http://localhost:8501/v1/models/{name}:predict",
        "instances": {"signature_name": "serving_default", "instances": [
            {key: value[i] for key, value in inputs.items()} for i in range(rows)]},
        "inputs": {"signature_name": "serving_default", "inputs": inputs},
    }
