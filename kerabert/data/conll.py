"""Token/tag data: CoNLL-style and JSONL readers, tag schemes, repair and entity spans.

Readers return `Examples` with two list columns: `text` (each sentence's words) and
`tags` (one tag per word). Tags are read in the file's scheme (IOB1, IOB2 or BIOES;
detected when not given) and converted to the scheme the model predicts in.

Schemes, for a two-word entity of type PER and a one-word entity of type LOC:

- IOB2 (CoNLL-2003 as usually distributed): `B-PER I-PER O B-LOC`
- IOB1 (the original CoNLL-2003 files): `I-PER I-PER O I-LOC`; `B-` only starts an
  entity that directly follows another of the same type.
- BIOES: `B-PER E-PER O S-LOC`

Invalid sequences (an `I-X` after `O` or after another type) are repaired as the
CoNLL evaluation script reads them: the `I-X` starts a new entity.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kerabert.data.tables import DataError, Examples

SCHEMES = ("IOB1", "IOB2", "BIOES")
_PREFIXES = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES"}
DOCSTART = "-DOCSTART-"


# -- tags and schemes ------------------------------------------------------------------------
def split_tag(tag):
    """`"B-PER"` -> `("B", "PER")`; `"O"` -> `("O", "")`; anything else -> `(None, tag)`."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or len(prefix) != 1 or not kind:
        return None, tag
    return prefix, kind


def check_scheme(scheme):
    """The canonical scheme name (`"iob2"` -> `"IOB2"`); a `ValueError` names the others."""
    name = str(scheme).upper().replace("BILOU", "BIOES")
    if name not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    return name


def tag_problem(tag, scheme):
    """Why `tag` is not a tag of `scheme` (None when it is)."""
    prefix, _ = split_tag(tag)
    if prefix == "O":
        return None
    if prefix is None:
        return f"tag {tag!r} is neither O nor PREFIX-TYPE"
    if prefix not in _PREFIXES[scheme]:
        return f"tag {tag!r} is not a {scheme} tag (prefixes {', '.join(_PREFIXES[scheme])}, O)"
    return None


def detect_scheme(sentences):
    """Guess the scheme of tag sequences: BIOES if any `E-`/`S-` tag, IOB1 if an
    entity starts with `I-`, IOB2 otherwise."""
    iob1 = False
    for tags in sentences:
        previous = "O"
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            if prefix == "I" and not _continues(previous, kind):
                iob1 = True
            previous = tag
    return "IOB1" if iob1 else "IOB2"


def _continues(previous, kind):
    """An `I-kind` after `previous` (IOB2 or IOB1) continues an entity."""
    prefix, previous_kind = split_tag(previous)
    return prefix in ("B", "I") and previous_kind == kind


def to_iob2(tags, scheme="IOB2"):
    """Tags of `scheme` -> valid IOB2; an `I-X` that cannot continue an entity starts one
    (as the CoNLL evaluation reads it), so this also repairs invalid sequences."""
    scheme = check_scheme(scheme)
    out = []
    previous = "O"
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix is None:
            raise ValueError(tag_problem(tag, scheme))
        if prefix == "S":
            prefix = "B"
        elif prefix == "E":
            prefix = "I"
        if prefix == "I" and not _continues(previous, kind):
            prefix = "B"
        tag = "O" if prefix == "O" else f"{prefix}-{kind}"
        out.append(tag)
        previous = tag
    return out


def repair_tags(tags, scheme="IOB2"):
    """Make a (predicted) tag sequence valid in its own scheme.

    Entities are read as the CoNLL evaluation reads them (an `I-X` after `O` or after
    another type starts a new entity) and written back in `scheme`.
    """
    return convert_tags(tags, scheme, scheme)


def iob2_to_bioes(tags):
    """Valid IOB2 tags -> BIOES."""
    out = []
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        following = tags[i + 1] if i + 1 < len(tags) else "O"
        ends = split_tag(following) != ("I", kind)
        if prefix == "B":
            out.append(f"S-{kind}" if ends else tag)
        elif prefix == "I":
            out.append(f"E-{kind}" if ends else tag)
        else:
            out.append(tag)
    return out


def iob2_to_iob1(tags):
    """Valid IOB2 tags -> IOB1 (`B-` only between adjacent entities of one type)."""
    out = []
    previous = "O"
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "B" and split_tag(previous)[1] != kind:
            tag = f"I-{kind}"
        out.append(tag)
        previous = tag
    return out


def convert_tags(tags, source, target):
    """Convert (and repair) one sentence's tags from scheme `source` to `target`."""
    iob2 = to_iob2(tags, source)
    target = check_scheme(target)
    if target == "BIOES":
        return iob2_to_bioes(iob2)
    if target == "IOB1":
        return iob2_to_iob1(iob2)
    return iob2


def tag_spans(tags, scheme="IOB2"):
    """Entities of one sentence as `(type, start_word, end_word)`, end exclusive, after
    repair (so that every tag sequence has one reading)."""
    spans = []
    for i, tag in enumerate(to_iob2(tags, scheme)):
        prefix, kind = split_tag(tag)
        if prefix == "B":
            spans.append([kind, i, i + 1])
        elif prefix == "I":
            spans[-1][2] = i + 1
    return [tuple(span) for span in spans]


def labels_for(kinds, scheme="IOB2"):
    """The full label list of a scheme over entity types: `O`, then each type's tags."""
    prefixes = "BIES" if check_scheme(scheme) == "BIOES" else "BI"
    return ["O"] + [f"{p}-{kind}" for kind in sorted(set(kinds)) for p in prefixes]


# -- readers -----------------------------------------------------------------------------------
class _Collector:
    """Collects sentences, checks tags, counts or raises on bad ones."""

    def __init__(self, path, scheme, target_scheme, labels, skip_bad):
        self.path = path
        self.scheme = None if scheme in (None, "auto") else check_scheme(scheme)
        self.target_scheme = check_scheme(target_scheme)
        self.labels = set(labels) if labels else None
        self.skip_bad = skip_bad
        self.words, self.tags, self.lines, self.tag_lines = [], [], [], []
        self.skipped = 0

    def bad(self, line, message):
        if not self.skip_bad:
            raise DataError(f"{self.path}:{line}: {message}")
        self.skipped += 1

    def add(self, line, words, tags, tag_lines):
        """A sentence starting at `line`; `tag_lines[i]` is the line of word i."""
        if not words:
            self.bad(line, "empty sentence (no words)")
            return
        if self.scheme is not None:
            for tag, number in zip(tags, tag_lines):
                problem = tag_problem(tag, self.scheme)
                if problem:
                    self.bad(number, problem)
                    return
        else:  # detected later: any scheme's prefixes (X-MISC is none of them)
            for tag, number in zip(tags, tag_lines):
                prefix = split_tag(tag)[0]
                if prefix is None or prefix not in "OBIES":
                    self.bad(number, tag_problem(tag, "IOB2") if prefix is None else
                             f"tag {tag!r} has prefix {prefix!r}, which no tag scheme uses "
                             "(B, I, E, S, or the tag O; or give --data-option scheme=...)")
                    return
        self.words.append(words)
        self.tags.append(tags)
        self.lines.append(line)
        self.tag_lines.append(tag_lines)

    def finish(self):
        if self.skipped:
            print(f"{self.path}: skipped {self.skipped} bad sentence(s)", file=sys.stderr)
        if not self.words:
            raise DataError(f"{self.path}: no usable sentences")
        scheme = self.scheme or detect_scheme(self.tags)
        tags = [convert_tags(t, scheme, self.target_scheme) for t in self.tags]
        if self.labels is not None:
            kept = []
            for index, (sentence, lines) in enumerate(zip(tags, self.tag_lines)):
                unknown = [(t, n) for t, n in zip(sentence, lines) if t not in self.labels]
                if unknown:
                    self.bad(unknown[0][1], f"tag {unknown[0][0]!r} is not one of the "
                                            f"model's labels {sorted(self.labels)}")
                    continue
                kept.append(index)
            if not kept:
                raise DataError(f"{self.path}: no usable sentences")
            if len(kept) < len(tags):
                print(f"{self.path}: skipped {len(tags) - len(kept)} sentence(s) with "
                      "unknown tags", file=sys.stderr)
        else:
            kept = range(len(tags))
        return Examples(
            {"text": [self.words[i] for i in kept], "tags": [tags[i] for i in kept]},
            source=self.path,
            skipped=self.skipped,
            lines=[self.lines[i] for i in kept],
        )


def read_conll(path, *, token_column=0, tag_column=-1, separator=None, scheme="auto",
               target_scheme="IOB2", labels=None, skip_bad=False):
    """Read a CoNLL-style file: one `token ... tag` line per word, blank lines between
    sentences, `-DOCSTART-` lines ignored.

    Args:
        path: the file.
        token_column, tag_column: column indices of the word and its tag (negative
            counts from the end: the default tag column is the last one).
        separator: the column separator (default: any run of spaces or tabs).
        scheme: the file's tag scheme, `IOB1`, `IOB2`, `BIOES`, or `auto` (detected).
        target_scheme: the scheme tags are converted to.
        labels: the allowed tags (in `target_scheme`); others are bad rows.
        skip_bad: skip and count bad sentences instead of raising `DataError`.

    Returns:
        `Examples` with `text` (lists of words) and `tags` (lists of tags).

    Example:
    ```python
    examples = read_conll("conll2003/train.txt")
    examples["text"][0], examples["tags"][0]  # ['EU', 'rejects', ...], ['B-ORG', 'O', ...]
    ```
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    token_column, tag_column = int(token_column), int(tag_column)
    collector = _Collector(path, scheme, target_scheme, labels, skip_bad)
    width = None
    words, tags, lines, start, broken = [], [], [], None, False

    def flush():
        nonlocal words, tags, lines, start, broken
        if start is not None and not broken:
            collector.add(start, words, tags, lines)
        words, tags, lines, start, broken = [], [], [], None, False

    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for number, text in enumerate(f, start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                flush()
                continue
            if start is None:
                start = number
            if broken:
                continue
            if any("\udc80" <= c <= "\udcff" for c in text):
                collector.bad(number, "line is not valid UTF-8")
                broken = True
                continue
            fields = text.split(separator) if separator else text.split()
            if fields[0] == DOCSTART:
                start = None if not words else start
                continue
            if width is None:
                width = len(fields)
            problem = None
            if len(fields) != width:
                problem = f"{len(fields)} columns, the file's first row has {width}"
            elif not _index_ok(token_column, width) or not _index_ok(tag_column, width):
                problem = (f"no column {token_column} or {tag_column} in a row of {width} "
                           "column(s)")
            elif not fields[token_column].strip():
                problem = "empty token"
            if problem:
                collector.bad(number, problem)
                broken = True
                continue
            words.append(fields[token_column].strip())
            tags.append(fields[tag_column].strip())
            lines.append(number)
        flush()
    return collector.finish()


def _index_ok(index, width):
    return -width <= index < width


def read_token_jsonl(path, *, tokens_key="tokens", tags_key="tags", scheme="auto",
                     target_scheme="IOB2", labels=None, tag_names=None, skip_bad=False):
    """Read JSONL lines such as `{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}`.

    Args:
        path: the file.
        tokens_key, tags_key: the keys of the word and tag lists (`tags_key` may also be
            found as `ner_tags`).
        scheme, target_scheme, labels, skip_bad: as for `read_conll`.
        tag_names: names of integer tags (index = tag id), as in Hugging Face datasets.

    Returns:
        `Examples` with `text` and `tags`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    collector = _Collector(path, scheme, target_scheme, labels, skip_bad)
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                collector.bad(number, f"invalid JSON ({e.msg})")
                continue
            if not isinstance(row, dict):
                collector.bad(number, "a JSON line must be an object")
                continue
            words = row.get(tokens_key)
            tags = row.get(tags_key, row.get("ner_tags"))
            if not isinstance(words, list) or not isinstance(tags, list):
                collector.bad(number, f"needs lists {tokens_key!r} and {tags_key!r}")
                continue
            if len(words) != len(tags):
                collector.bad(number, f"{len(words)} tokens but {len(tags)} tags")
                continue
            if tag_names is not None:
                try:
                    tags = [tag_names[t] if isinstance(t, int) else t for t in tags]
                except IndexError:
                    collector.bad(number, f"a tag id outside tag_names ({len(tag_names)})")
                    continue
            if not all(isinstance(w, str) and w.strip() for w in words):
                collector.bad(number, "every token must be a non-empty string")
                continue
            if not all(isinstance(t, str) for t in tags):
                collector.bad(number, "tags must be strings (or give tag_names)")
                continue
            collector.add(number, [w.strip() for w in words], list(tags), [number] * len(tags))
    return collector.finish()


def read_tagged(path, *, format=None, **options):
    """Read token/tag data: `format` `conll` or `jsonl` (guessed from the suffix)."""
    suffix = Path(path).suffix.lower()
    format = format or ("jsonl" if suffix in (".jsonl", ".json") else "conll")
    if format == "jsonl":
        return read_token_jsonl(path, **options)
    if format == "conll":
        return read_conll(path, **options)
    raise DataError(f"{path}: format {format!r} is not a token/tag format (conll, jsonl)")
