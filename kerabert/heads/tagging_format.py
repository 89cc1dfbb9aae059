"""The `ner` head's predictions from its `serving_outputs` (contract 2's
`format_predictions`), in the form its hand-written numpy `decode` gives.

Kept apart from `tagging.py` so that the head's decoding bodies stay as they are;
`kerabert.testing.check_head` compares the two, so a change to either that makes
them disagree (tags, entity spans, scores) fails the check.
"""

from __future__ import annotations

import numpy as np


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def format_predictions(head, serving, features, examples):
    """Dense per-word and per-entity serving outputs -> `{"entities", "words", "tags"}`."""
    results = []
    for i, text in enumerate(examples["text"]):
        count = int(serving["num_words"][i])
        if isinstance(text, (list, tuple, np.ndarray)):
            words = [str(w) for w in text]
            raw = " ".join(words)
            offsets, position = [], 0
            for word in words:  # pre-split words are joined by single spaces, as decode
                offsets.append((position, position + len(word)))
                position += len(word) + 1
            offsets = offsets[:count]
        else:
            raw = text
            offsets = [(int(s), int(e)) for s, e in zip(serving["word_starts"][i, :count],
                                                       serving["word_ends"][i, :count])]
        entities = []
        for e in range(int(serving["num_entities"][i])):
            first = int(serving["entity_word_starts"][i, e])
            last = int(serving["entity_word_ends"][i, e])
            start, end = offsets[first][0], offsets[last - 1][1]
            entities.append({
                "text": raw[start:end],
                "type": _text(serving["entity_types"][i, e]),
                "start": start,
                "end": end,
                "score": round(float(serving["entity_scores"][i, e]), 6),
                "word_start": first,
                "word_end": last,
            })
        results.append({
            "entities": entities,
            "words": [raw[s:e] for s, e in offsets],
            "tags": [_text(t) for t in serving["tags"][i, :count]],
        })
    return results
