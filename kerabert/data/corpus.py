"""Plain-text corpora for masked-LM (and next-sentence) pretraining, streamed with tf.data.

A corpus is a folder (read recursively) or a list of UTF-8 text files. Documents are
either one per file (`documents="file"`) or separated by blank lines
(`documents="blank_line"`, BERT's own pretraining format). Files are read line by
line with `tf.data.TextLineDataset`, never whole, and:

- `packed(tokenizer, sequence_length)` tokenizes lines in the graph and packs the word
  pieces of consecutive documents into rows of exactly `sequence_length` tokens
  (`[CLS] ... [SEP]`, documents separated by `[SEP]`, as RoBERTa's FULL-SENTENCES),
  so no position is wasted on padding;
- `sentence_pairs()` makes next-sentence pairs: a sentence and the sentence that
  follows it in the same document (`next_sentence` = 0) or, half of the time, a
  random sentence from elsewhere in the stream (`next_sentence` = 1).

A held-out part (every document whose hash falls in the held-out bucket) is kept
apart for evaluation: `part="train"` and `part="holdout"` never share a document.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from kerabert.data.tables import DataError

DOCUMENT_MODES = ("blank_line", "file")
IS_NEXT, IS_RANDOM = 0, 1  # Hugging Face's next_sentence_label convention
# Sentence ends: . ! ? (with closing quotes or brackets) followed by spaces.
_SENTENCE_END = r"""([.!?]+["'\)\]]*)\s+"""


def corpus_files(paths):
    """The text files of a corpus: a file, a folder (recursively) or a list of both.

    Hidden files and folders are skipped; the order is sorted, so it is stable.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise DataError(f"{path}: the corpus folder has no files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such corpus file or folder")
    return [str(f) for f in files]


class Corpus:
    """A plain-text corpus, streamed.

    Args:
        paths: a file, a folder (read recursively) or a list of files and folders.
        documents: `"blank_line"` (documents separated by blank lines) or `"file"`
            (one document per file; blank lines are paragraph breaks).
        holdout: the fraction of documents kept for evaluation (`part="holdout"`).
        skip_bad: skip lines that are not valid UTF-8 instead of failing on the first
            (the error names the file and line).
        split_sentences: for `sentence_pairs`, split lines at sentence ends (`.`, `!`,
            `?`); turn off for corpora with one sentence per line.

    Example:
    ```python
    corpus = Corpus("my_texts/", documents="file", holdout=0.05)
    rows = corpus.packed(tokenizer, sequence_length=128)   # {"token_ids": [128]}
    pairs = corpus.sentence_pairs()  # {"text", "text_pair", "next_sentence"}
    ```
    """

    def __init__(self, paths, documents="blank_line", holdout=0.0, skip_bad=False,
                 split_sentences=True):
        if documents not in DOCUMENT_MODES:
            raise ValueError(f"documents must be one of {DOCUMENT_MODES}, got {documents!r}")
        if not 0.0 <= holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {holdout}")
        self.files = corpus_files(paths)
        self.documents = documents
        self.holdout = float(holdout)
        self.skip_bad = bool(skip_bad)
        self.split_sentences = bool(split_sentences)

    # -- lines -----------------------------------------------------------------------------
    def lines(self, part="all", shuffle_files=False, seed=None):
        """Non-blank lines as `{"document", "text", "first"}`.

        `document` is an int64 id unique in the corpus, `first` marks a document's first
        line. `part` is `"all"`, `"train"` or `"holdout"`.
        """
        if part not in ("all", "train", "holdout"):
            raise ValueError(f"part must be 'all', 'train' or 'holdout', got {part!r}")
        files = tf.data.Dataset.from_tensor_slices(
            (tf.constant(self.files), tf.range(len(self.files), dtype=tf.int64))
        )
        if shuffle_files:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        ds = files.flat_map(self._file_lines)
        if part != "all" and self.holdout > 0:
            every = max(2, round(1.0 / self.holdout))
            held = lambda x: tf.equal(  # noqa: E731
                tf.strings.to_hash_bucket_fast(tf.strings.as_string(x["document"]), every), 0
            )
            ds = ds.filter(held if part == "holdout" else lambda x: tf.logical_not(held(x)))
        elif part == "holdout":
            raise ValueError("this corpus has no held-out part (holdout=0)")
        return ds

    def _file_lines(self, path, file_index):
        lines = tf.data.TextLineDataset(path).enumerate(start=1)
        by_file = self.documents == "file"

        def step(state, element):
            # pending: a blank line has ended the current document (blank_line mode).
            document, pending, has_text = state
            number, line = element
            blank = tf.equal(tf.strings.length(tf.strings.strip(line)), 0)
            text = tf.logical_not(blank)
            starts = tf.logical_and(text, pending)
            first = tf.logical_and(text, tf.logical_or(starts, tf.logical_not(has_text)))
            document = document + tf.cast(starts, tf.int64)
            # A blank line after some text ends the document; text clears the flag.
            pending = tf.constant(False) if by_file else tf.logical_and(blank, has_text)
            new_state = (document, pending, tf.logical_or(has_text, text))
            return new_state, {"document": document, "text": line, "first": first,
                               "blank": blank, "line": number}

        initial = (tf.constant(0, tf.int64), tf.constant(False), tf.constant(False))
        ds = lines.scan(initial, step).filter(lambda x: tf.logical_not(x["blank"]))

        def check(x):
            valid = tf.equal(
                tf.strings.unicode_transcode(x["text"], "UTF-8", "UTF-8", errors="ignore"),
                x["text"],
            )
            if not self.skip_bad:
                assertion = tf.debugging.Assert(
                    valid, ["kerabert corpus: invalid UTF-8 at", path, "line", x["line"]]
                )
                with tf.control_dependencies([assertion]):
                    valid = tf.identity(valid)
            return valid

        ds = ds.filter(check)
        # One id per document in the whole corpus: the file in the high bits.
        return ds.map(lambda x: {
            "document": file_index * (1 << 32) + x["document"],
            "text": x["text"],
            "first": x["first"],
        })

    def statistics(self, part="all"):
        """Counts over one pass: `{"files", "documents", "lines", "bad_lines"}`.

        Raises `DataError` naming the file and line of the first line that is not
        valid UTF-8 (unless `skip_bad`, where such lines are counted as `bad_lines`).
        """
        def count(state, x):
            return (state[0] + tf.cast(x["first"], tf.int64), state[1] + 1)

        total_lines = None
        if self.skip_bad:
            total_lines = sum(
                int(tf.data.TextLineDataset(f).filter(
                    lambda line: tf.strings.length(tf.strings.strip(line)) > 0
                ).reduce(tf.constant(0, tf.int64), lambda c, _: c + 1))
                for f in self.files
            ) if part == "all" else None
        try:
            documents, lines = self.lines(part).reduce(
                (tf.constant(0, tf.int64), tf.constant(0, tf.int64)), count
            )
        except tf.errors.InvalidArgumentError as e:
            raise corpus_error(e) from None
        stats = {"files": len(self.files), "documents": int(documents), "lines": int(lines)}
        if total_lines is not None:
            stats["bad_lines"] = total_lines - int(lines)
        return stats

    # -- packed rows for masked-LM ---------------------------------------------------------
    def packed(self, tokenizer, sequence_length, part="all", shuffle_files=False, seed=None):
        """Rows `{"token_ids": int32 [sequence_length]}` packed from consecutive documents.

        Each row is `[CLS]` + `sequence_length - 2` word pieces + `[SEP]`; a `[SEP]`
        separates documents inside a row; only the stream's last row is padded.
        """
        if sequence_length < 4:
            raise ValueError(f"sequence_length must be at least 4, got {sequence_length}")
        body = sequence_length - 2
        sep, cls, pad = tokenizer.sep_id, tokenizer.cls_id, tokenizer.pad_id

        def tokenize(batch):
            ids = tokenizer(batch["text"])
            separator = tf.ragged.boolean_mask(
                tf.fill([tf.shape(batch["first"])[0], 1], sep), batch["first"][:, tf.newaxis]
            )
            return tf.concat([separator, ids], axis=1)

        ds = self.lines(part, shuffle_files=shuffle_files, seed=seed)
        ds = ds.batch(256).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        # Treat each line's pieces as a batch of scalars: rebatch cuts them into rows.
        ds = ds.rebatch(body)

        def wrap(pieces):
            pieces = tf.cast(pieces, tf.int32)
            padding = tf.fill([body - tf.shape(pieces)[0]], pad)
            row = tf.concat([[cls], pieces, [sep], padding], axis=0)
            return {"token_ids": tf.ensure_shape(row, [sequence_length])}

        return ds.map(wrap, num_parallel_calls=tf.data.AUTOTUNE)

    # -- sentence pairs for next-sentence prediction ---------------------------------------
    def sentences(self, part="all"):
        """Sentences as `{"document", "text", "index"}` (`index` counts the stream)."""
        ds = self.lines(part)

        def split(x):
            text = x["text"]
            if self.split_sentences:
                text = tf.strings.regex_replace(text, _SENTENCE_END, "\\1\n")
            pieces = tf.strings.split(tf.strings.strip(text), "\n")
            pieces = tf.boolean_mask(pieces, tf.strings.length(tf.strings.strip(pieces)) > 0)
            return tf.data.Dataset.from_tensor_slices({
                "document": tf.fill(tf.shape(pieces), x["document"]),
                "text": pieces,
            })

        ds = ds.flat_map(split).enumerate()
        return ds.map(lambda i, x: {**x, "index": i})

    def sentence_pairs(self, part="all", seed=None, random_buffer=10_000):
        """Next-sentence pairs `{"text", "text_pair", "next_sentence"}`.

        Every two consecutive sentences of a document make a pair; half of the pairs
        (at random) get a random sentence from a shuffled stream of the corpus as
        `text_pair` instead. The label is 0 (`IS_NEXT`) exactly when `text_pair` is
        the sentence that follows `text` in the corpus, 1 (`IS_RANDOM`) otherwise.
        """
        sentences = self.sentences(part)
        pairs = tf.data.Dataset.zip(sentences, sentences.skip(1)).filter(
            lambda a, b: tf.equal(a["document"], b["document"])
        )
        randoms = sentences.shuffle(random_buffer, seed=seed, reshuffle_each_iteration=True)
        coins = tf.data.Dataset.random(seed=seed).map(lambda r: tf.equal(r % 2, 0))
        ds = tf.data.Dataset.zip(pairs, randoms.repeat(), coins)

        def pick(pair, other, use_random):
            a, b = pair
            second = tf.where(use_random, other["text"], b["text"])
            index = tf.where(use_random, other["index"], b["index"])
            label = tf.where(tf.equal(index, a["index"] + 1), IS_NEXT, IS_RANDOM)
            return {"text": a["text"], "text_pair": second, "next_sentence": label}

        return ds.map(pick, num_parallel_calls=tf.data.AUTOTUNE)


def corpus_error(error):
    """A tf.data assertion about a bad line -> `DataError` naming the file and line."""
    message = str(getattr(error, "message", error))
    if "kerabert corpus:" in message:
        detail = message[message.index("kerabert corpus:") + len("kerabert corpus:"):]
        parts = detail.replace("[", " ").replace("]", " ").split()
        # parts: invalid UTF-8 at <path> line <number>
        try:
            at = parts.index("at")
            line_at = len(parts) - 1 - parts[::-1].index("line")
            path = " ".join(parts[at + 1: line_at]).strip("'\"b")
            number = parts[line_at + 1]
            return DataError(f"{path}:{number}: invalid UTF-8 (use skip_bad to skip such lines)")
        except (ValueError, IndexError):
            pass
        return DataError(f"corpus:{detail.strip()}")
    return error
