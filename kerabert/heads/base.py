"""The head contract: what a task head provides so kerabert can train, decode and export it.

A head is a small, configurable Python object (not a layer) that knows four things:

1. its raw data: which fields it reads (`fields`, `target_fields`) and how to read a
   file into columns (`read`), learning its label set from data if none was given
   (`adapt`);
2. its preprocessing: a Keras layer that turns a batch of raw fields into BERT inputs,
   targets and sample weights, in the TensorFlow graph (`preprocessor`);
3. its layers: Keras layers on top of the backbone's outputs (`build_outputs`), with
   a loss and metrics (`loss`, `metrics`);
4. its outputs: human-readable predictions in Python (`decode`), task metrics on them
   (`score`), and in-graph decoded outputs for exports (`serving_outputs`).

A head knows the backbone only through its outputs (`sequence_output`,
`pooled_output`) and the tokenizer only through `kerabert.tokenizer`. Heads are found
by name through the `kerabert.heads` entry-point group; see `docs/writing-a-head.md`.

The contract is versioned: a head declares `contract_version`, and the registry
refuses a head written for another major version with a message naming both.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

CONTRACT_VERSION = 1


class Head:
    """Base class of kerabert task heads (contract version 1).

    Subclasses set `name`, implement the methods below that raise
    `NotImplementedError`, and keep every constructor argument in `get_config()`.

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
    def build_outputs(self, backbone_outputs: dict, inputs: dict) -> Any:
        """Head layers on the backbone's outputs: logits (a tensor or a dict)."""
        raise NotImplementedError

    def loss(self) -> Any:
        raise NotImplementedError

    def metrics(self) -> list[Any]:
        return []

    # -- outputs ---------------------------------------------------------------------------
    def decode(self, outputs: Any, features: Mapping[str, Any],
               examples: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Numpy `outputs` and `features` of one batch -> one dict per raw example."""
        raise NotImplementedError

    def score(self, predictions: list[dict[str, Any]],
              examples: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """Task metrics of decoded `predictions` against the examples' targets."""
        return {}

    def serving_outputs(self, outputs: Any, features: Mapping[str, Any]) -> dict[str, Any]:
        """In-graph decoded outputs for exports: `{name: tf.Tensor}` with batch first."""
        raise NotImplementedError(f"head {self.name!r} does not implement serving_outputs")

    def search_space(self, hp: Any) -> dict[str, Any]:
        """keras-tuner hyperparameters for this head: `{name: hp.<Choice|Float|Int>}`."""
        return {
            "learning_rate": hp.Choice("learning_rate", [2e-5, 3e-5, 5e-5, 1e-4]),
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
