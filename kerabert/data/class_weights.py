"""Class weights for single-label classification: `"balanced"` or one weight per label.

`train(..., class_weight=...)` (`kerabert train --class-weight`) weights each training
example's loss by its class's weight, as Keras' `fit(class_weight=...)` does; the weights
are applied inside the `tf.data` pipeline (a lookup by the target's class id), so they
work under every `tf.distribute` strategy. Validation stays unweighted, as in Keras.

Example:
```python
from kerabert.data.class_weights import balanced_weights
balanced_weights(["a", "b", "b", "b"], ["a", "b"])  # [2.0, 0.666...]
```
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from kerabert.validation import OptionError

BALANCED = "balanced"


def balanced_weights(values: Sequence[Any], labels: Sequence[str]) -> list[float]:
    """scikit-learn's "balanced" weights, `n / (k * n_c)` per label (`k` labels, `n`
    examples, `n_c` of label `c`): every class then carries the same total weight. A label
    the data never shows gets 1.0 (no example uses it)."""
    counts = Counter(str(v) for v in values)
    total = sum(counts[label] for label in labels)
    return [total / (len(labels) * counts[label]) if counts[label] else 1.0
            for label in labels]


def resolve(head: Any, spec: Any,
            examples: Mapping[str, Sequence[Any]]) -> dict[str, float] | None:
    """`{label: weight}` for each of `head.labels`, in class-id order, as `spec` asks.

    Args:
        head: an adapted single-label classification head (`labels` known).
        spec: None (no weighting), `"balanced"` (from the label counts of `examples`),
            or `{label: weight}` (a label value or its `label_names` name; labels left
            out weigh 1.0).
        examples: the training examples (their `label` column).

    Raises:
        OptionError: the head is not a single-label classifier, a label is unknown, or
            a weight is not a finite number >= 0.
    """
    if spec is None:
        return None
    labels = getattr(head, "labels", None)
    if (not labels or getattr(head, "multi_label", False)
            or tuple(getattr(head, "target_fields", ())) != ("label",)
            or getattr(head, "token_level_targets", False)):
        raise OptionError(
            f"class_weight needs a single-label classification head (one class id per "
            f"example); head {getattr(head, 'name', head)!r} has other targets")
    if spec == BALANCED:
        return dict(zip(labels, balanced_weights(examples["label"], labels)))
    if not isinstance(spec, Mapping):
        raise OptionError(f"class_weight must be {BALANCED!r} or {{label: weight}}, "
                          f"got {spec!r}")
    by_name = {str(name): str(label)
               for label, name in (getattr(head, "label_names", None) or {}).items()}
    weights = dict.fromkeys(labels, 1.0)
    for key, value in spec.items():
        label = str(key) if str(key) in weights else by_name.get(str(key))
        if label not in weights:
            raise OptionError(f"class_weight names {key!r}, which is not one of the "
                              f"head's labels {list(labels)}")
        try:
            weight = float(value)
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise OptionError(f"class_weight of {key!r} must be a number >= 0, "
                              f"got {value!r}")
        weights[label] = weight
    return weights


def weighted(dataset: Any, weights: Mapping[str, float]) -> Any:
    """`(features, targets[, sample_weight])` batches with each example's class weight
    (`resolve`'s `{label: weight}`, in class-id order) as its sample weight (multiplied
    into a sample weight already there)."""
    import tensorflow as tf

    table = tf.constant(list(weights.values()), tf.float32)

    def add(features, targets, *sample_weight):
        weight = tf.gather(table, tf.cast(targets, tf.int32))
        if sample_weight:
            weight = weight * tf.cast(sample_weight[0], tf.float32)
        return features, targets, weight

    return dataset.map(add)
