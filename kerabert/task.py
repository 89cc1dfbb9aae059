"""A task model: a BERT backbone and a head, as one plain functional `keras.Model`.

`Task` takes BERT's dense inputs (`token_ids`, `segment_ids`, `padding_mask`) and
returns the head's logits, so `fit`, `evaluate`, callbacks and `tf.distribute` work as
for any Keras model. It also carries the tokenizer, the head's configuration and the
sequence length, so a saved `.keras` file is all that is needed to read raw text again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerabert.data import pipeline
from kerabert.data.tables import DataError, check_targets, check_text_columns
from kerabert.heads import registry
from kerabert.heads.base import Head, call_build_outputs
from kerabert.validation import check_positive_int, check_sequence_length


@keras.saving.register_keras_serializable(package="kerabert")
class Task(keras.Model):
    """Backbone + head: BERT inputs -> head outputs.

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        head: a `kerabert.heads.Head`, or `{"name": ..., "config": {...}}`.
        tokenizer: the backbone's `kerabert.tokenizer.BertTokenizer`.
        sequence_length: the maximum packed length for this task.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:
    ```python
    backbone, tokenizer = kerabert.load_backbone("all-minilm-l6-v2")
    model = Task(backbone, SentimentHead(labels=["neg", "pos"]), tokenizer, 128)
    model.predict_examples({"text": ["A fine film."]})
    ```
    """

    def __init__(self, backbone: keras.Model, head: Head | dict, tokenizer: Any,
                 sequence_length: int = 128, **kwargs: Any) -> None:
        # Before the graph is built: a length of 0 crashes TensorFlow.
        check_sequence_length(sequence_length, getattr(backbone, "max_sequence_length", None))
        if isinstance(head, dict):
            head = registry.get(head["name"]).from_config(head.get("config", {}))
        if not isinstance(head, Head) and not hasattr(head, "build_outputs"):
            raise TypeError(f"head must be a kerabert Head, got {type(head).__name__}")
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in pipeline.BACKBONE_INPUTS
        }
        inputs.update(head.extra_inputs())
        backbone_outputs = backbone({k: inputs[k] for k in pipeline.BACKBONE_INPUTS})
        outputs = call_build_outputs(head, backbone_outputs, inputs, backbone)
        kwargs.setdefault("name", f"{head.name.replace('-', '_')}_task")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.head = head
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)

    @property
    def input_names(self):
        return tuple(self.input.keys()) if isinstance(self.input, dict) else pipeline.BACKBONE_INPUTS

    # -- data ------------------------------------------------------------------------------
    def make_dataset(self, examples: Mapping[str, Sequence[Any]], *, batch_size: int = 32,
                     training: bool = False, **options: Any) -> tf.data.Dataset:
        """Raw examples -> a `tf.data.Dataset` of model batches (see
        `kerabert.data.pipeline.make_dataset` for `options`)."""
        return pipeline.make_dataset(
            self.head,
            self.tokenizer,
            examples,
            sequence_length=self.sequence_length,
            batch_size=batch_size,
            training=training,
            input_names=self.input_names,
            **options,
        )

    def predict_examples(self, examples: Mapping[str, Sequence[Any]], *,
                         batch_size: int = 32) -> list[dict[str, Any]]:
        """Raw examples (`{field: list}`) -> one decoded prediction dict per example.

        Raises:
            OptionError: `batch_size` is not a positive integer.
            DataError: a field is missing, or a value is not a (non-null) string.
        """
        check_positive_int("batch_size", batch_size)
        missing = [f for f in self.head.fields if f not in examples]
        if missing:
            raise DataError(f"head {self.head.name!r} needs field(s) {missing}")
        columns = {f: list(examples[f]) for f in self.head.fields}
        check_text_columns(columns, examples, words=self.head.token_level_targets)
        if not columns[self.head.fields[0]]:
            return []
        tensors = pipeline.examples_to_tensors(columns)
        predict_batch = self._predict_function(tensors)
        results = []
        size = len(columns[self.head.fields[0]])
        for start in range(0, size, batch_size):
            raw = {f: v[start : start + batch_size] for f, v in columns.items()}
            features, outputs = predict_batch({f: t[start : start + batch_size]
                                               for f, t in tensors.items()})
            outputs = tf.nest.map_structure(lambda t: t.numpy(), outputs)
            features_np = {k: v.numpy() for k, v in features.items()}
            results.extend(self.head.decode(outputs, features_np, raw))
        return results

    def preprocess_function(self):
        """Raw batch `{field: tensor}` -> the features `predict_examples` feeds the model:
        the head's in-graph preprocessor, then the cut to the batch's length bucket.

        Untraced: wrap it in `tf.function` (or a `tf.data` map) to run it in a graph.
        """
        preprocessor = self.head.preprocessor(self.tokenizer, self.sequence_length)
        boundaries = pipeline.bucket_boundaries(self.sequence_length)
        return lambda batch: pipeline.trim_features(
            preprocessor(batch)[0], self.sequence_length, boundaries)[0]

    def _predict_function(self, example_tensors=None):
        """Raw batch -> `(trimmed features, outputs)`, traced once and kept between calls
        (tracing anew on every call cost ~230 ms per `predict_examples` call).

        Tokenization and the forward pass run in one graph call: going through
        `predict_on_batch` and a `tf.data` iterator per batch cost more than the
        forward pass itself on short sentences. With `jit_compile`, the forward pass is
        its own XLA function (compiled once per length bucket).
        """
        key = (self.sequence_length, id(self.head), self.jit_compile)
        cache = self.__dict__.get("_predict_cache")
        if cache is None or cache[0] != key:
            preprocess = self.preprocess_function()
            names = self.input_names

            def forward(features):
                return self({k: features[k] for k in names}, training=False)

            if self.jit_compile:  # two graphs: tokenization cannot be XLA-compiled
                preprocess = tf.function(preprocess, reduce_retracing=True)
                forward = tf.function(forward, jit_compile=True, reduce_retracing=True)

            def function(batch):
                features = preprocess(batch)
                return features, forward(features)

            if not self.jit_compile:  # one graph call per batch
                function = tf.function(function, reduce_retracing=True)

            cache = (key, function)
            # Not a Keras-tracked attribute: the preprocessor is no part of the model.
            object.__setattr__(self, "_predict_cache", cache)
        if example_tensors is not None and not self.jit_compile:
            # Trace for any batch size and length up front (a no-op once traced), so
            # a second call with another shape does not trace again.
            cache[1].get_concrete_function(
                {f: _any_batch_spec(t) for f, t in example_tensors.items()})
        return cache[1]

    def evaluate_examples(self, examples: Mapping[str, Sequence[Any]], *,
                          batch_size: int = 32) -> dict[str, Any]:
        """Task metrics (`head.score`) of this model's predictions on `examples`.

        Raises:
            DataError: `examples` lack the head's target fields (no labels to score).
        """
        check_positive_int("batch_size", batch_size)
        check_targets(self.head, examples, "evaluate against")
        predictions = self.predict_examples(examples, batch_size=batch_size)
        return self.head.score(predictions, examples)

    # -- saving ----------------------------------------------------------------------------
    def get_config(self):
        # Not chained to super(): a functional model's config cannot rebuild a subclass.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "head": {"name": self.head.name, "config": self.head.get_config()},
            "tokenizer": keras.layers.serialize(self.tokenizer),
            "sequence_length": self.sequence_length,
        }

    def compile_from_config(self, config):
        # Models saved before the tagging and masked-LM metrics got distinct registered
        # names name both `kerabert>MaskedTokenAccuracy`: resolve it by its module.
        return super().compile_from_config(_renamed_metrics(config))

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        config["tokenizer"] = keras.layers.deserialize(config["tokenizer"])
        return cls(**config)


# The registered name both token-accuracy metrics shared -> the one each module now has.
LEGACY_METRIC_NAMES = {
    ("kerabert>MaskedTokenAccuracy", "kerabert.heads.tagging"): "kerabert>TaggedTokenAccuracy",
    ("kerabert>MaskedTokenAccuracy", "kerabert.heads.masked_lm"):
        "kerabert>MaskedLMTokenAccuracy",
}


def _renamed_metrics(config):
    """A compile config with legacy registered metric names replaced (nested anywhere)."""
    if isinstance(config, dict):
        key = (config.get("registered_name"), config.get("module"))
        config = {k: _renamed_metrics(v) for k, v in config.items()}
        if key in LEGACY_METRIC_NAMES:
            config["registered_name"] = LEGACY_METRIC_NAMES[key]
        return config
    if isinstance(config, (list, tuple)):
        return type(config)(_renamed_metrics(v) for v in config)
    return config


def _any_batch_spec(tensor):
    """The type of `tensor` with every dimension unknown (ragged rows stay ragged)."""
    if isinstance(tensor, tf.RaggedTensor):
        return tf.RaggedTensorSpec([None] * tensor.shape.rank, tensor.dtype,
                                   ragged_rank=tensor.ragged_rank,
                                   row_splits_dtype=tensor.row_splits.dtype)
    return tf.TensorSpec([None] * tensor.shape.rank, tensor.dtype)


def resolve_head(head: str | Head, **options: Any) -> Head:
    """A head instance from a name (looked up in the registry) or an instance."""
    if isinstance(head, str):
        return registry.create(head, **options)
    if options:
        raise ValueError("head options go with a head name, not a head instance")
    return head


def build_model(head: str | Head, backbone: Any = "all-minilm-l6-v2", *, tokenizer: Any = None,
                sequence_length: int = 128, compile: bool = True,
                examples: Mapping[str, Sequence[Any]] | None = None, optimizer: Any = None,
                jit_compile: bool = False, **head_options: Any) -> Task:
    """Build (and compile) a task model: a plain `keras.Model` with a BERT backbone.

    Args:
        head: a head name from `kerabert.heads.names()` or a `Head` instance.
        backbone: a `load_backbone` spec, a `(backbone, tokenizer)` pair, or a
            backbone (with `tokenizer=`).
        tokenizer: the tokenizer, when `backbone` is a backbone instance.
        sequence_length: the maximum packed length.
        compile: compile with kerabert's defaults (AdamW, warmup then linear decay,
            the head's loss and metrics).
        examples: training examples the head adapts to (e.g. learns labels from).
        optimizer: an optimizer to compile with instead of the default.
        jit_compile: compile train/predict steps with XLA.
        **head_options: options of the named head (e.g. `labels=[...]`).

    Returns:
        A `kerabert.Task`.

    Example:
    ```python
    model = kerabert.build_model("sentiment", "all-minilm-l6-v2",
                                 labels=["negative", "positive"])
    ```
    """
    from kerabert.backbone import resolve_backbone
    from kerabert.optim import compile_task

    head = resolve_head(head, **head_options)
    if examples is not None:
        head.adapt(examples)
    backbone, tokenizer = resolve_backbone(backbone, tokenizer)
    model = Task(backbone, head, tokenizer, sequence_length)
    if compile:
        compile_task(model, optimizer=optimizer, jit_compile=jit_compile)
    return model


class ModelFileError(ValueError):
    """A model file that is not a loadable kerabert task model (missing, empty,
    truncated, corrupt, another kind of model, or refused by safe mode)."""


def check_model_file(path):
    """Raise `ModelFileError` unless `path` is a whole `.keras` archive of a kerabert
    `Task` (every member's CRC checked: a truncated or bit-flipped file is named as
    such, not reported by Keras as a missing file or an h5py error)."""
    import json
    import zipfile
    from pathlib import Path

    path = Path(path)
    retrain = "train it again with `kerabert train`, or copy the file again"
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file (train one with `kerabert train`)")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a .keras file (give the "
                             "model.keras inside it)")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: the file is empty ({retrain})")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            names = set(archive.namelist())
            if broken is not None:
                raise ModelFileError(f"{path}: corrupt (member {broken} fails its CRC "
                                     f"check; {retrain})")
            if not {"config.json", "model.weights.h5"} <= names:
                raise ModelFileError(f"{path}: not a Keras model archive (no config.json "
                                     f"or model.weights.h5; {retrain})")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"{path}: not a whole .keras file ({type(e).__name__}: {e}; "
                             f"truncated or another format? {retrain})") from None
    registered = config.get("registered_name") or config.get("class_name")
    if registered not in ("kerabert>Task", "Task"):
        raise ModelFileError(f"{path}: a plain Keras model ({config.get('class_name')}), "
                             "not a kerabert task model (build one with kerabert.build_model "
                             "or `kerabert train`)")


def load_model(path: str | os.PathLike, compile: bool = True, safe_mode: bool = True) -> Task:
    """Load a task model: a `.keras` file saved with `model.save(...)`, or a fine-tuned
    Hugging Face BERT folder (`BertForSequenceClassification`, `...TokenClassification`,
    `...QuestionAnswering`, `...MaskedLM`, `...PreTraining`; `kerabert.huggingface`).

    A `.keras` file's head is looked up by name in the registry, so a plugin head needs
    its distribution installed.

    Args:
        path: the `.keras` file, or the Hugging Face folder.
        compile: compile it with its saved loss, metrics and optimizer settings (the
            optimizer starts afresh: kerabert saves models without optimizer state).
        safe_mode: Keras' safe mode: refuse `Lambda` layers (arbitrary code).

    Raises:
        ModelFileError: the file is missing, empty, truncated, corrupt, not a kerabert
            task model, or holds code safe mode refuses.
        CheckpointError: a Hugging Face folder kerabert cannot read (the message names
            the file and field).
    """
    import warnings

    import kerabert.backbone  # noqa: F401  (registers kerabert's serializable classes)
    import kerabert.families.encoder  # noqa: F401  (the other BERT-family backbones)
    import kerabert.optim  # noqa: F401  (the optimizer and schedule of compiled models)
    import kerabert.byte_pair  # noqa: F401  (their tokenizers: byte-level BPE,
    import kerabert.sentencepiece  # noqa: F401  SentencePiece)
    from kerabert import huggingface

    if huggingface.is_folder(path):
        backbone, head, tokenizer, sequence_length = huggingface.read_task(path)
        model = Task(backbone, head, tokenizer, sequence_length)
        huggingface.load_head_weights(model, path)
        if compile:
            from kerabert.optim import compile_task

            compile_task(model)
        return model
    check_model_file(path)
    try:
        with warnings.catch_warnings():
            # Saved without optimizer state on purpose (see save_model_file).
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
    except Exception as e:
        cause = _kerabert_cause(e)
        if cause is not None:
            raise cause from e
        message = str(e).split("\n")[0]
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise ModelFileError(
                f"{path}: holds a Lambda layer (arbitrary Python code), which safe mode "
                "refuses; load it with safe_mode=False only if you trust its author") from e
        raise ModelFileError(f"{path}: cannot be loaded ({type(e).__name__}: {message})") from e
    if not isinstance(model, Task):
        raise ModelFileError(f"{path}: not a kerabert task model ({type(model).__name__})")
    return model


def _kerabert_cause(error):
    """A kerabert error (an unknown or broken head) in `error`'s chain, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (registry.HeadNotFoundError, registry.BrokenHeadError)):
            return error
        error = error.__cause__ or error.__context__
    return None


def to_numpy(outputs):
    """Model outputs (tensor or dict of tensors) as numpy."""
    return tf.nest.map_structure(np.asarray, outputs)
