"""Entity-level precision, recall and F1, as the CoNLL evaluation script computes them.

Counting is done by `seqeval` in its default mode, which reproduces `conlleval`: an
entity is right only when its type and both boundaries are right, and an `I-X` after
`O` or after another type starts a new entity. Tags of any scheme are first turned
into IOB2 (`kerabert.data.conll.to_iob2`), so IOB1 and BIOES are scored alike.
"""

from __future__ import annotations

import warnings

from kerabert.data.conll import to_iob2


def entity_scores(gold, predicted, scheme="IOB2"):
    """Entity-level P/R/F1 (micro over entities, and per type) and token accuracy.

    Args:
        gold: sentences of gold tags (lists of strings).
        predicted: sentences of predicted tags, the same lengths as `gold`.
        scheme: the tags' scheme (`IOB1`, `IOB2`, `BIOES`).

    Returns:
        `{"precision", "recall", "f1", "token_accuracy", "entities", "sentences",
        "per_type": {type: {"precision", "recall", "f1", "support"}}}`; `entities` is
        the number of gold entities.

    Example:
    ```python
    entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])["f1"]  # 0.0
    ```
    """
    try:  # an optional extra (`kerabert[ner]`): imported here, so the head loads without it
        from seqeval.metrics import classification_report
    except ImportError as e:
        raise ImportError("entity-level scores need seqeval: pip install 'kerabert[ner]' "
                          "(or pip install seqeval)") from e
    gold, predicted = list(gold), list(predicted)
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    for index, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {index}: {len(g)} gold tags but {len(p)} predicted")
    tokens = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p))
    gold2 = [to_iob2(g, scheme) for g in gold]
    predicted2 = [to_iob2(p, scheme) for p in predicted]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about types never predicted
        report = classification_report(gold2, predicted2, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0,
                                     "support": 0})
    per_type = {
        kind: {
            "precision": float(values["precision"]),
            "recall": float(values["recall"]),
            "f1": float(values["f1-score"]),
            "support": int(values["support"]),
        }
        for kind, values in sorted(report.items())
        if not kind.endswith(" avg")
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "token_accuracy": correct / tokens if tokens else 0.0,
        "entities": int(micro["support"]),
        "sentences": len(gold),
        "per_type": per_type,
    }
