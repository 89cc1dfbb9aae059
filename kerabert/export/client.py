"""Tokenize for an ONNX export without TensorFlow, exactly as the in-graph tokenizer does.

An ONNX export starts at token ids (tensorflow-text ops do not convert), so clients
tokenize themselves. `WordPieceClient` reads the `vocabulary.txt` and
`tokenizer.json` written beside `model.onnx` and reproduces kerabert's in-graph
pipeline in pure Python: tensorflow-text `FastBertTokenizer` (BERT normalization,
pre-tokenization on whitespace and punctuation, greedy longest-match-first WordPiece)
then `kerabert.tokenizer.pack_inputs` (`[CLS] a [SEP] (b [SEP])`, same truncation).
`OnnxModel` adds onnxruntime on top. Tokenizing and `OnnxModel.run` need only numpy
(and onnxruntime); `OnnxModel.predict` decodes with the head itself (kerabert installed).

A model that takes `case_ids` (the `ner` head's `case_feature`) gets them too: the case
class of each piece's word in the original text (`kerabert.heads.word_shape.word_case`),
0 on `[CLS]`, `[SEP]` and padding, as the in-graph preprocessor computes them. `text`
may then also be a list of words per row (pre-split, as CoNLL gives). The client packs
one window per row: a sentence longer than `sequence_length - 2` pieces is cut, where
the in-graph preprocessor makes several windows.

Example:
```python
from kerabert.export.client import OnnxModel

model = OnnxModel("savedmodels/sst2/3")
model.predict(text=["A fine film.", "A dull one."])
# [{'label': 'positive', 'score': 0.97, 'scores': {...}}, ...]
```
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np

TOKENIZER_FILE = "tokenizer.json"
MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"


def _is_whitespace(char):
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) in ("Zs", "Zl", "Zp")


def _is_control(char):
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    code = ord(char)
    # ASCII symbols count as punctuation in BERT, e.g. "$" and "^".
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt), which
# ICU's NFKC case folding removes; Python's unicodedata does not expose the property.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _is_default_ignorable(code):
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


def _is_cjk(code):
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
            or 0x2B820 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF
            or 0x2F800 <= code <= 0x2FA1F)


class WordPieceClient:
    """Raw strings -> BERT inputs as numpy arrays, like kerabert's in-graph preprocessor.

    Args:
        vocabulary: word pieces (index = id).
        lowercase: lower-case and strip accents (NFD) before WordPiece.
        unknown_token, cls_token, sep_token, pad_token: special tokens.
        max_bytes_per_word: longer words become `unknown_token`.
        sequence_length: the packed length the model was trained with.
        fields: the raw fields, in segment order (e.g. `["question", "context"]`).
        inputs: the model's input names; `case_ids` among them makes `encode` return
            them (default: the three BERT inputs).

    Example:
    ```python
    client = WordPieceClient.from_directory("savedmodels/sst2/3")
    client.encode(text=["A fine film."])["token_ids"]
    ```
    """

    def __init__(self, vocabulary, lowercase=True, unknown_token="[UNK]", cls_token="[CLS]",
                 sep_token="[SEP]", pad_token="[PAD]", max_bytes_per_word=100,
                 sequence_length=128, fields=("text",), inputs=None, **unused):
        self.vocabulary = list(vocabulary)
        self.index = {}
        for i, token in enumerate(self.vocabulary):
            self.index.setdefault(token, i)
        self.lowercase = lowercase
        self.unknown_token = unknown_token
        self.max_bytes_per_word = max_bytes_per_word
        self.sequence_length = int(sequence_length)
        self.fields = tuple(fields)
        self.inputs = tuple(inputs) if inputs else ("token_ids", "segment_ids", "padding_mask")
        self.unknown_id = self.index[unknown_token]
        self.cls_id = self.index[cls_token]
        self.sep_id = self.index[sep_token]
        self.pad_id = self.index[pad_token]

    @classmethod
    def from_directory(cls, directory):
        """Read `tokenizer.json` and its vocabulary from an ONNX export directory."""
        directory = Path(directory)
        with open(directory / TOKENIZER_FILE, encoding="utf-8") as f:
            settings = json.load(f)
        with open(directory / settings.pop("vocabulary"), encoding="utf-8") as f:
            vocabulary = [line.rstrip("\r\n") for line in f]
        while vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        return cls(vocabulary, **settings)

    # -- tokenization ----------------------------------------------------------------------
    def normalize(self, text):
        """FastBertNormalizer's mapping: NFKC case folding (compatibility forms,
        `ß` -> `ss`, default-ignorable characters removed), NFD, accents stripped."""
        if self.lowercase:
            text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
            text = "".join(
                c for c in text
                if unicodedata.category(c) != "Mn" and not _is_default_ignorable(ord(c))
            )
        return text

    def words(self, text):
        """BERT pre-tokenization: split on whitespace; punctuation and CJK stand alone."""
        words, current = [], []
        for char in self.normalize(text):
            code = ord(char)
            # tensorflow-text turns control characters into spaces (BERT dropped them).
            if _is_whitespace(char) or _is_control(char):
                if current:
                    words.append("".join(current))
                    current = []
            elif _is_punctuation(char) or _is_cjk(code):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
        return words

    def wordpiece(self, word):
        """Greedy longest-match-first WordPiece ids of one word (`[UNK]` if impossible)."""
        if len(word.encode("utf-8")) > self.max_bytes_per_word:
            return [self.unknown_id]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    ids.append(self.index[piece])
                    break
                end -= 1
            else:
                return [self.unknown_id]
            start = end
        return ids

    def tokenize(self, text):
        """One string -> word-piece ids."""
        return [i for word in self.words(text) for i in self.wordpiece(word)]

    def word_cases(self, text):
        """The case class of each word of `words(text)`, from the original characters
        it was normalized from (as the in-graph preprocessor reads each word's original
        bytes, from its first piece's start to its last piece's end)."""
        from kerabert.heads.word_shape import NO_LETTERS, word_case

        # Normalized character by character, each keeping the index it came from.
        chars = [(c, index) for index, original in enumerate(text)
                 for c in self.normalize(original)]
        spans, current = [], []
        for char, index in chars:
            if _is_whitespace(char) or _is_control(char):
                if current:
                    spans.append(current)
                    current = []
            elif _is_punctuation(char) or _is_cjk(ord(char)):
                if current:
                    spans.append(current)
                    current = []
                spans.append([index])
            else:
                current.append(index)
        if current:
            spans.append(current)
        cases = [word_case(text[span[0]:span[-1] + 1]) for span in spans]
        count = len(self.words(text))
        return (cases + [NO_LETTERS] * count)[:count]

    def tokenize_with_cases(self, text):
        """One string, or a list of words, -> `(ids, cases)`: word-piece ids and each
        piece's word case class. A word of a list is tokenized on its own (`[UNK]` if
        it yields no piece) and all its pieces get the whole word's class."""
        from kerabert.heads.word_shape import word_case

        if isinstance(text, str):
            ids, cases = [], []
            for word, case in zip(self.words(text), self.word_cases(text)):
                pieces = self.wordpiece(word)
                ids += pieces
                cases += [case] * len(pieces)
            return ids, cases
        ids, cases = [], []
        for word in text:
            pieces = self.tokenize(str(word)) or [self.unknown_id]
            ids += pieces
            cases += [word_case(str(word))] * len(pieces)
        return ids, cases

    # -- packing ---------------------------------------------------------------------------
    def pack(self, segments, pad_to_sequence_length=False, cases=None):
        """One or two id lists per row -> `token_ids`, `segment_ids`, `padding_mask`
        (and `case_ids` when `cases` gives the case class of every id)."""
        rows, case_rows = [], []
        for number, row in enumerate(segments):
            budget = self.sequence_length - 1 - len(row)
            if len(row) == 1:
                kept = [min(len(row[0]), budget)]
            else:
                first = min(len(row[0]), max(budget - len(row[1]), budget - budget // 2))
                kept = [first, min(len(row[1]), budget - first)]
            ids, types, classes = [self.cls_id], [0], [0]
            for index, (segment, length) in enumerate(zip(row, kept)):
                ids += list(segment[:length]) + [self.sep_id]
                types += [index] * (length + 1)
                if cases is not None:
                    classes += list(cases[number][index][:length]) + [0]
            rows.append((ids, types))
            case_rows.append(classes)
        width = self.sequence_length if pad_to_sequence_length else max(len(r[0]) for r in rows)
        token_ids = np.full((len(rows), width), self.pad_id, np.int32)
        segment_ids = np.zeros((len(rows), width), np.int32)
        padding_mask = np.zeros((len(rows), width), np.int32)
        case_ids = np.zeros((len(rows), width), np.int32)
        for i, (ids, types) in enumerate(rows):
            token_ids[i, : len(ids)] = ids
            segment_ids[i, : len(ids)] = types
            padding_mask[i, : len(ids)] = 1
            if cases is not None:
                case_ids[i, : len(ids)] = case_rows[i]
        packed = {"token_ids": token_ids, "segment_ids": segment_ids,
                  "padding_mask": padding_mask}
        if cases is not None:
            packed["case_ids"] = case_ids
        return packed

    def encode(self, pad_to_sequence_length=False, **columns):
        """`field=[strings]` for each of `fields` -> numpy BERT inputs for the model.

        Rows are padded to the longest row (the model takes any length), or to
        `sequence_length` with `pad_to_sequence_length=True`.
        """
        missing = [f for f in self.fields if f not in columns]
        if missing:
            raise ValueError(f"missing field(s) {missing}; this model reads {list(self.fields)}")
        values = [columns[f] for f in self.fields]
        values = [[v] if isinstance(v, str) else list(v) for v in values]
        if len({len(v) for v in values}) > 1:
            raise ValueError(f"give as many strings for each of {list(self.fields)}")
        if "case_ids" not in self.inputs:
            segments = [[self.tokenize(text) for text in row] for row in zip(*values)]
            return self.pack(segments, pad_to_sequence_length=pad_to_sequence_length)
        encoded = [[self.tokenize_with_cases(text) for text in row] for row in zip(*values)]
        return self.pack([[ids for ids, _ in row] for row in encoded],
                         pad_to_sequence_length=pad_to_sequence_length,
                         cases=[[cases for _, cases in row] for row in encoded])


class OnnxModel:
    """An ONNX export with its tokenizer: raw strings in, outputs (and labels) out.

    Args:
        directory: an export directory holding `model.onnx`, `tokenizer.json`,
            `vocabulary.txt` and `card.json`.
        providers: onnxruntime execution providers.

    Example:
    ```python
    model = OnnxModel("savedmodels/sst2/3")
    model.run(text=["A fine film."])["logits"]
    ```
    """

    def __init__(self, directory, providers=("CPUExecutionProvider",)):
        import onnxruntime

        directory = Path(directory)
        self.client = WordPieceClient.from_directory(directory)
        self.session = onnxruntime.InferenceSession(str(directory / MODEL_FILE),
                                                    providers=list(providers))
        self.card = {}
        if (directory / CARD_FILE).is_file():
            with open(directory / CARD_FILE, encoding="utf-8") as f:
                self.card = json.load(f)

    def run(self, **columns):
        """Raw `field=[strings]` -> the model's raw outputs `{name: array}` (numpy only)."""
        return self._run(self.client.encode(**columns))

    def _run(self, features):
        feed = {i.name: features[i.name] for i in self.session.get_inputs()}
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feed)))

    def head(self):
        """The export's head, rebuilt from the card (`kerabert.heads` registry + config)."""
        spec = self.card.get("head")
        if not spec:
            raise ValueError(f"the export has no {CARD_FILE} naming its head: use run() for "
                             "the raw outputs")
        try:
            from kerabert.heads import registry
        except ImportError as e:
            raise ImportError("decoded predictions come from the head's own decoding, which "
                              "needs kerabert installed; run() needs only numpy") from e
        return registry.get(spec["name"]).from_config(spec.get("config", {}))

    def predict(self, **columns):
        """Raw `field=[strings]` -> one decoded prediction dict per example.

        The head decodes (its `decode` on the ONNX outputs, as `predict_examples` on the
        Keras model), so every head's predictions have the same form here; this needs
        kerabert (with TensorFlow) installed, `run` only numpy.
        """
        features = self.client.encode(**columns)
        outputs = self._run(features)
        examples = {f: [columns[f]] if isinstance(columns[f], str) else list(columns[f])
                    for f in self.client.fields}
        structured = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        return self.head().decode(structured, features, examples)
