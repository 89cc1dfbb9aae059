"""Derive graded sentence pairs from labelled texts, for data sets without STS scores.

With hierarchical labels such as TREC's `COARSE:fine` (`HUM:ind`, `LOC:city`), a pair
of texts gets a graded score from how their labels relate:

- 1.0: the same fine label (both ask for an individual's name);
- 0.5: the same coarse label, different fine labels (a person vs a group of people);
- 0.0: different coarse labels (a person vs a place).

Flat labels (no `:`) give only 1.0 and 0.0. Levels are sampled in equal proportion,
pairs are unordered and unique, and a text is never paired with itself. This is a
proxy for "do these two questions ask for the same kind of thing", not human
similarity ratings, and it says nothing about STS-B scores.

Run:
```
python -m kerabert_sts.pairs ../shared/data/trec/train.txt /tmp/trec-pairs/train.tsv \
    --format trec --pairs 6000 --seed 0
```
The output is a TSV with a `sentence1 sentence2 score` header.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

from kerabert.data import read_table

# TREC's `COARSE:fine question text`, one question per line.
TREC_PATTERN = r"(?P<label>[A-Z]+:\S+) (?P<text>.*\S)\s*"


def read_labelled(path, format="trec"):
    """`(texts, labels)` from a TREC file (`format="trec"`) or a `text`/`label` table."""
    if format == "trec":
        examples = read_table(path, {"text": "text", "label": "label"}, format="lines",
                              line_pattern=TREC_PATTERN)
    else:
        examples = read_table(path, {"text": "text", "label": "label"}, format=format)
    return examples["text"], examples["label"]


def graded_pairs(texts, labels, num_pairs, seed=0):
    """Sample `num_pairs` unique unordered pairs with scores 1.0 / 0.5 / 0.0.

    Args:
        texts: the texts.
        labels: one label per text; `COARSE:fine` labels give three levels.
        num_pairs: how many pairs to return, split equally between the levels (a level
            the data cannot fill gives fewer).
        seed: the random seed (the result is deterministic for a seed).

    Returns:
        A list of `(text_a, text_b, score)`.

    Example:
    ```python
    graded_pairs(["Who?", "Which person?", "Where?"], ["HUM:ind", "HUM:ind", "LOC:other"], 2)
    ```
    """
    rng = random.Random(seed)
    texts = list(texts)
    coarse = [label.split(":", 1)[0] for label in labels]
    by_fine, by_coarse = defaultdict(list), defaultdict(list)
    for index, (label, group) in enumerate(zip(labels, coarse)):
        by_fine[label].append(index)
        by_coarse[group].append(index)

    # Candidate partners depend only on the anchor's labels: build each list once.
    cache = {}

    def cached(key, build):
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def same_fine(i):
        return [j for j in by_fine[labels[i]] if j != i]

    def same_coarse_other_fine(i):
        return cached(("coarse", labels[i]),
                      lambda: [j for j in by_coarse[coarse[i]] if labels[j] != labels[i]])

    def other_coarse(i):
        return cached(("other", coarse[i]),
                      lambda: [j for j in range(len(texts)) if coarse[j] != coarse[i]])

    levels = [(1.0, same_fine), (0.0, other_coarse)]
    if any(":" in label for label in labels):
        levels.insert(1, (0.5, same_coarse_other_fine))
    # Anchors that can form a pair of each level, computed once.
    anchors = {score: [i for i in range(len(texts)) if partners(i)] for score, partners in levels}
    pairs, seen = [], set()
    for index, (score, partners) in enumerate(levels):
        quota = num_pairs // len(levels) + (index < num_pairs % len(levels))
        found, attempts = 0, 0
        # Random draws until the quota is met, or the level has run out of new pairs.
        while found < quota and anchors[score] and attempts < 50 * quota:
            attempts += 1
            i = rng.choice(anchors[score])
            j = rng.choice(partners(i))
            key = (min(i, j), max(i, j))
            if key in seen or texts[i] == texts[j]:
                continue
            seen.add(key)
            if rng.random() < 0.5:  # both orders appear: the cross-encoder sees a then b
                i, j = j, i
            pairs.append((texts[i], texts[j], score))
            found += 1
    rng.shuffle(pairs)
    return pairs


def write_pairs(pairs, path):
    """Write pairs as a `sentence1 sentence2 score` TSV (texts must not hold tabs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence1\tsentence2\tscore\n")
        for a, b, score in pairs:
            if "\t" in a or "\t" in b or "\n" in a or "\n" in b:
                raise ValueError(f"a text holds a tab or newline: {a!r} / {b!r}")
            f.write(f"{a}\t{b}\t{score:g}\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kerabert_sts.pairs",
        description="Derive graded sentence pairs (1 / 0.5 / 0) from labelled texts.",
    )
    parser.add_argument("input", help="labelled texts: a TREC file, or a TSV/CSV with text,label")
    parser.add_argument("output", help="the pairs TSV to write (sentence1, sentence2, score)")
    parser.add_argument("--format", default="trec", choices=("trec", "tsv", "csv", "jsonl"))
    parser.add_argument("--pairs", type=int, default=6000, help="number of pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    texts, labels = read_labelled(args.input, args.format)
    pairs = graded_pairs(texts, labels, args.pairs, seed=args.seed)
    write_pairs(pairs, args.output)
    counts = defaultdict(int)
    for _, _, score in pairs:
        counts[score] += 1
    summary = ", ".join(f"{score:g}: {counts[score]}" for score in sorted(counts))
    print(f"{args.output}: {len(pairs)} pairs from {len(texts)} texts ({summary})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
