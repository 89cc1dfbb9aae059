"""The head contract: what a task head provides so kerabert can train, decode and export it.

A head is a small, configurable Python object (not a layer) that knows four things:

1. its raw data: which fields it reads (`fields`, `target_fields`) and how to read a
   file into columns (`read`), learning its label set from data if none was given
   (`adapt`);
2. its preprocessing: a Keras layer that turns a batch of raw fields into BERT inputs,
   targets and sample weights, in the TensorFlow graph (`preprocessor`);
3. its layers: Keras layers on top of the backbone's outputs (`build_outputs`, which
   also gets the backbone itself, e.g. to tie weights to its token embedding), with
   a loss and metrics (`loss`, `metrics`);
4. its outputs: decoded outputs in TensorFlow ops (`serving_outputs`, used by every
   export), human-readable predictions in Python (`decode`: by default
   `serving_outputs` run eagerly and cut into one dict per example, shaped by
   `format_predictions`), and task metrics on them (`score`).

A head writes its decoding once, in TF ops; a hand-written numpy `decode` is only for
what the graph cannot give (e.g. n-best lists), and `kerabert.testing.check_head`
compares it with the decoding derived from `serving_outputs`.

Required (the registry refuses a head class that does not define them itself, naming
them): `name`, `fields`, `preprocessor`, `build_outputs`, `loss`, `serving_outputs`
(`REQUIRED_MEMBERS`). Everything else has a working default.

The contract is versioned: a head declares `contract_version`. Version 2 is this one;
heads written for version 1 (`build_outputs(backbone_outputs, inputs)`, a hand-written
`decode`, `serving_outputs` optional) still load and work. The registry refuses a head
written for another version with a message naming both.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

CONTRACT_VERSION = 2
#: Versions this kerabert loads: version-1 heads keep working (see `REQUIRED_MEMBERS`).
SUPPORTED_CONTRACT_VERSIONS = (1, 2)
#: What a head class must define itself, per contract version (the base class's
#: versions raise NotImplementedError, or, for `name`, are empty).
REQUIRED_MEMBERS = {
    1: ("fields", "preprocessor", "build_outputs", "loss", "decode"),
    2: ("name", "fields", "preprocessor", "build_outputs", "loss", "serving_outputs"),
}


class Head:
    """Base class of kerabert task heads (contract version 2).

    Subclasses set `name`, implement the required members (`REQUIRED_MEMBERS[2]`:
    `fields`, `preprocessor`, `build_outputs`, `loss`, `serving_outputs`), and keep
    every constructor argument in `get_config()`.

    Args:
        **options: the head's own options; see each head.

    Example:
    ```python
    head = kerabert.heads.get("sentiment")(labels=["negative", "positive"])
    model = kerabert.build_model(head, backbone="all-minilm-l6-v2")
    ```
    """

    #: The entry-point name users select the head by.
    name: str = ""
    #: The contract version this head was written for.
    contract_version: int = CONTRACT_VERSION
    #: Targets are per token (trimmed with the sequence) rather than per example.
    token_level_targets: bool = False
    #: The training defaults `kerabert.train` uses for what the caller leaves unset
    #: (see `kerabert.training.RECIPE_KEYS`); a head overrides the keys it needs.
    #: `min_examples`: on a small training set, more epochs, until the model has seen
    #: at least this many examples (`kerabert.training.recipe_for`).
    recipe: dict = {"epochs": 3, "learning_rate": 5e-5, "warmup_ratio": 0.1,
                    "sequence_length": 128, "min_examples": 25_000}

    # -- raw data --------------------------------------------------------------------------
    @property
    def fields(self) -> tuple[str, ...]:
        """Raw input fields the head reads at inference, e.g. `("text",)`."""
        raise NotImplementedError

    @property
    def target_fields(self) -> tuple[str, ...]:
        """Raw fields holding the targets in training data, e.g. `("label",)`."""
        return ()

    def read(self, path: str, **options: Any) -> Mapping[str, list]:
        """Read a file into columns `{field: list}`; errors name the file and line."""
        raise NotImplementedError(f"head {self.name!r} has no file reader")

    def adapt(self, examples: Mapping[str, Sequence[Any]]) -> None:
        """Learn what the head needs from training examples (e.g. the label set)."""

    def prepare_examples(self, examples: Mapping[str, Sequence[Any]], tokenizer: Any,
                         sequence_length: int, *,
                         skip_bad: bool = False) -> tuple[Mapping[str, Sequence[Any]], int]:
        """Check training examples against the tokenizer and count model rows.

        Called by `kerabert.train` once the tokenizer is known. A head whose examples
        can fail only after tokenization (a QA answer that fits no window) raises
        `DataError` naming the example here, or drops it when `skip_bad`.

        Returns:
            `(examples, rows)`: the usable examples and how many model rows (features)
            they make, which sets the number of steps per epoch.
        """
        return examples, len(examples)

    # -- preprocessing ---------------------------------------------------------------------
    def preprocessor(self, tokenizer: Any, sequence_length: int) -> Any:
        """A Keras layer: raw batch `{field: tensor}` -> `(features, targets, weights)`.

        `features` holds at least `token_ids`, `segment_ids` and `padding_mask` of shape
        `[n, sequence_length]` (`n` may differ from the batch size, e.g. QA windows),
        plus anything `decode` needs. `targets` and `weights` are `None` when the
        batch has no target fields.
        """
        raise NotImplementedError

    def extra_inputs(self) -> dict[str, Any]:
        """Model inputs beyond the backbone's three, as `{name: keras.Input}`."""
        return {}

    # -- layers ----------------------------------------------------------------------------
    def build_outputs(self, backbone_outputs: dict, inputs: dict, backbone: Any = None) -> Any:
        """Head layers on the backbone's outputs: logits (a tensor or a dict).

        Args:
            backbone_outputs: the backbone's symbolic outputs (`sequence_output`,
                `pooled_output`).
            inputs: the model's symbolic inputs (BERT's three and `extra_inputs`).
            backbone: the backbone model itself (e.g. its `token_embedding`, for a
                head whose output projection is tied to it).
        """
        raise NotImplementedError

    def loss(self) -> Any:
        raise NotImplementedError

    def metrics(self) -> list[Any]:
        return []

    # -- outputs ---------------------------------------------------------------------------
    def decode(self, outputs: Any, features: Mapping[str, Any],
               examples: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Numpy `outputs` and `features` of one batch -> one dict per raw example.

        By default the head's own `serving_outputs`, run eagerly, then
        `format_predictions`: the decoding is written once, in TF ops. Override it
        only where Python must decode differently (and `check_head` compares the two).
        """
        return self.format_predictions(serving_numpy(self, outputs, features),
                                       features, examples)

    def format_predictions(self, serving: Mapping[str, Any], features: Mapping[str, Any],
                           examples: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Decoded serving outputs (numpy, batch first) -> one prediction dict per example.

        The default cuts every output into rows (`serving_rows`): `{name: value}`
        with Python numbers, strings and lists. Override it to shape predictions
        (e.g. name the scores); the decoding itself stays in `serving_outputs`.
        """
        return serving_rows(serving, _count(examples, self.fields))

    def score(self, predictions: list[dict[str, Any]],
              examples: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """Task metrics of decoded `predictions` against the examples' targets."""
        return {}

    def serving_outputs(self, outputs: Any, features: Mapping[str, Any]) -> dict[str, Any]:
        """Decoded outputs in TF ops, for exports and `decode`: `{name: tf.Tensor}` with
        one row per raw example first (strings, scores, ids; no Python)."""
        raise NotImplementedError(f"head {self.name!r} does not implement serving_outputs")

    def search_space(self, hp: Any) -> dict[str, Any]:
        """keras-tuner hyperparameters for this head: `{name: hp.<Choice|Float|Int>}`.

        The learning rates bracket the recipes' 1e-4 (BENCHMARKS.md, the TREC search).
        """
        return {
            "learning_rate": hp.Choice("learning_rate", [3e-5, 5e-5, 1e-4, 2e-4]),
            "batch_size": hp.Choice("batch_size", [16, 32]),
            "epochs": hp.Int("epochs", 1, 3),
            "warmup_ratio": hp.Choice("warmup_ratio", [0.0, 0.06, 0.1]),
        }

    # -- configuration ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Head:
        return cls(**copy.deepcopy(config))

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"


def _count(examples, fields):
    """How many raw examples a batch holds (None when the examples are not given)."""
    for field in fields:
        if field in (examples or {}):
            return len(examples[field])
    return None


def serving_numpy(head: Head, outputs: Any, features: Mapping[str, Any]) -> dict[str, Any]:
    """`head.serving_outputs` run eagerly on numpy `outputs` and `features`: `{name: array}`."""
    import numpy as np
    import tensorflow as tf

    tensors = tf.nest.map_structure(tf.convert_to_tensor, outputs)
    feature_tensors = {k: tf.convert_to_tensor(v) for k, v in features.items()}
    served = head.serving_outputs(tensors, feature_tensors)
    return {name: value.to_list() if isinstance(value, tf.RaggedTensor) else np.asarray(value)
            for name, value in served.items()}


def python_value(value: Any) -> Any:
    """A numpy value as plain Python (bytes as UTF-8 text, arrays as lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [python_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def serving_rows(serving: Mapping[str, Any], count: int | None = None) -> list[dict[str, Any]]:
    """`{name: [batch, ...] array}` -> one `{name: Python value}` dict per row.

    Raises:
        ValueError: the outputs do not all have `count` (or the same number of) rows.
    """
    sizes = {name: len(value) for name, value in serving.items()}
    rows = set(sizes.values())
    if count is not None:
        rows.add(count)
    if len(rows) > 1:
        raise ValueError(f"serving outputs must have one row per example ({count} examples): "
                         f"rows per output {sizes}")
    n = rows.pop() if rows else 0
    return [{name: python_value(value[i]) for name, value in serving.items()}
            for i in range(n)]


def call_build_outputs(head: Any, backbone_outputs: dict, inputs: dict, backbone: Any) -> Any:
    """`head.build_outputs`, with the backbone when the method takes it.

    Contract-2 heads take it as the third argument; a version-1 head (or a subclass
    overriding the method with the old two parameters) is called without it.
    """
    import inspect

    method = head.build_outputs
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return method(backbone_outputs, inputs)
    if any(p.name == "backbone" for p in parameters):
        return method(backbone_outputs, inputs, backbone=backbone)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return method(backbone_outputs, inputs, backbone)
    return method(backbone_outputs, inputs)
