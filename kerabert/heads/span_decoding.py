"""Start/end logits of question windows -> answers with character offsets.

The same rule runs in numpy (`decode_answers`, for `Task.predict_examples`) and in
the TensorFlow graph (`decode_answers_in_graph`, for exports), so both give the same
answer:

1. In each window, a span `(i, j)` is valid when both positions are context tokens,
   `i` is a token's max-context window (see `span_preprocessor`), `i <= j` and
   `j - i < max_answer_length`. Its score is `start_logits[i] + end_logits[j]`.
2. The answer of a question is its best valid span over all its windows (the first
   window wins a tie), mapped to `context[offset_starts[i]:offset_ends[j]]`.
3. With `allow_no_answer` (SQuAD 2.0), the null score is the smallest
   `start_logits[0] + end_logits[0]` (`[CLS]`) over the windows, and the answer is
   empty when `null_score - best_score > null_threshold`, as in run_squad.py.

Every span is searched (not only the top `n_best_size` starts and ends, as the
reference does), so the answer is the exact best valid span; `n_best_size` bounds
the n-best list.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerabert.heads.utf8 import char_substrings

NO_ANSWER = {"answer": "", "start": -1, "end": -1}
_NEG = -1e30


def _span_scores(start_logits, end_logits, offset_starts, max_context, max_answer_length):
    """`[L, L]` scores of every span of one window (`-inf` where invalid)."""
    length = start_logits.shape[-1]
    context = offset_starts[:length] >= 0
    can_start = context & (max_context[:length] > 0)
    i = np.arange(length)[:, None]
    j = np.arange(length)[None, :]
    valid = can_start[:, None] & context[None, :] & (j >= i) & (j - i < max_answer_length)
    scores = start_logits[:, None].astype(np.float64) + end_logits[None, :]
    return np.where(valid, scores, -np.inf)


def decode_answers(start_logits, end_logits, features, contexts, *, max_answer_length=30,
                   allow_no_answer=False, null_threshold=0.0, n_best_size=20,
                   return_n_best=0):
    """Decode one batch of windows into one answer dict per question.

    Args:
        start_logits, end_logits: `[windows, length]` numpy logits.
        features: numpy features of the windows: `example_index`, `offset_starts`,
            `offset_ends`, `max_context` (`[windows, length]` or longer).
        contexts: the raw context of each question of the batch.
        max_answer_length: the longest answer, in tokens.
        allow_no_answer: SQuAD 2.0: answer `""` when the null score wins.
        null_threshold: how much the null score must beat the best span by.
        n_best_size: spans considered per question for the n-best list.
        return_n_best: add the `n_best` best answers (with probabilities over them).

    Returns:
        One dict per question: `answer`, `score`, `start`, `end` (character offsets,
        `context[start:end] == answer`; `-1` for no answer), and `null_score` with
        `allow_no_answer`, `n_best` with `return_n_best`.
    """
    start_logits = np.asarray(start_logits, np.float64)
    end_logits = np.asarray(end_logits, np.float64)
    example_index = np.asarray(features["example_index"])
    results = []
    for example, context in enumerate(contexts):
        windows = np.flatnonzero(example_index == example)
        best = None  # (score, start, end)
        candidates = []
        null_score = np.inf
        for w in windows:
            starts = features["offset_starts"][w]
            ends = features["offset_ends"][w]
            scores = _span_scores(start_logits[w], end_logits[w], starts,
                                  features["max_context"][w], max_answer_length)
            null_score = min(null_score, start_logits[w, 0] + end_logits[w, 0])
            flat = scores.ravel()
            top = int(np.argmax(flat))
            if np.isfinite(flat[top]) and (best is None or flat[top] > best[0]):
                i, j = divmod(top, scores.shape[1])
                best = (float(flat[top]), int(starts[i]), int(ends[j]))
            if return_n_best:
                count = min(n_best_size, flat.size)
                for k in np.argpartition(-flat, count - 1)[:count]:
                    if np.isfinite(flat[k]):
                        i, j = divmod(int(k), scores.shape[1])
                        candidates.append((float(flat[k]), int(starts[i]), int(ends[j])))
        result = _answer(best, context)
        if allow_no_answer:
            result["null_score"] = float(null_score)
            if best is None or null_score - best[0] > null_threshold:
                result.update(NO_ANSWER, score=float(null_score))
        if return_n_best:
            result["n_best"] = _n_best(candidates, context, null_score if allow_no_answer
                                       else None, min(return_n_best, n_best_size))
        results.append(result)
    return results


def _answer(span, context):
    if span is None:
        return dict(NO_ANSWER, score=float("-inf"))
    score, start, end = span
    return {"answer": context[start:end], "score": score, "start": start, "end": end}


def _n_best(candidates, context, null_score, size):
    """The best distinct answer texts (plus the null answer), with softmax probabilities
    over the list, as run_squad.py's `nbest_predictions.json`."""
    entries, seen = [], set()
    for span in sorted(candidates, key=lambda c: -c[0]):
        entry = _answer(span, context)
        if entry["answer"] in seen:
            continue
        seen.add(entry["answer"])
        entries.append(entry)
        if len(entries) == size:
            break
    if null_score is not None:
        entries.append(dict(NO_ANSWER, score=float(null_score)))
        entries.sort(key=lambda e: -e["score"])
        entries = entries[:size]
    if entries:
        scores = np.array([e["score"] for e in entries])
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        for entry, p in zip(entries, probabilities):
            entry["probability"] = float(p)
    return entries


def decode_answers_in_graph(start_logits, end_logits, features, *, max_answer_length=30,
                            allow_no_answer=False, null_threshold=0.0):
    """The best answer of each question, as dense tensors (TensorFlow ops only).

    Args:
        start_logits, end_logits: float `[windows, length]`.
        features: the preprocessor's features: `example_index`, `offset_starts`,
            `offset_ends`, `max_context`, `context`.
        max_answer_length, allow_no_answer, null_threshold: as `decode_answers`.

    Returns:
        `{"answer": string [n], "score": float32 [n], "start": int32 [n], "end":
        int32 [n]}` for the `n` questions of the batch (character offsets, `-1` and
        `""` when there is no answer).
    """
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    length = tf.shape(start_logits)[1]
    offset_starts = features["offset_starts"][:, :length]
    offset_ends = features["offset_ends"][:, :length]
    context = offset_starts >= 0
    can_start = context & (features["max_context"][:, :length] > 0)
    # tf.expand_dims, not `[:, tf.newaxis]`: TFLite has no kernel for new-axis slices.
    i = tf.expand_dims(tf.range(length), 1)
    j = tf.expand_dims(tf.range(length), 0)
    shape_ok = (j >= i) & (j - i < max_answer_length)
    valid = (tf.expand_dims(can_start, 2) & tf.expand_dims(context, 1)
             & tf.expand_dims(shape_ok, 0))
    scores = tf.expand_dims(start_logits, 2) + tf.expand_dims(end_logits, 1)
    scores = tf.where(valid, scores, _NEG)
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    top = tf.argmax(flat, axis=1, output_type=tf.int32)
    window_best = tf.reduce_max(flat, axis=1)
    span_start = tf.gather(offset_starts, top // length, batch_dims=1)
    span_end = tf.gather(offset_ends, top % length, batch_dims=1)

    example_index = tf.cast(features["example_index"], tf.int32)
    count = tf.reduce_max(example_index) + 1
    windows = tf.range(tf.shape(flat)[0])
    best = tf.math.unsorted_segment_max(window_best, example_index, count)
    # The first window reaching the question's best score, as the numpy decoder.
    is_best = window_best >= tf.gather(best, example_index)
    chosen = tf.math.unsorted_segment_min(
        tf.where(is_best, windows, tf.shape(flat)[0]), example_index, count
    )
    found = best > _NEG / 2
    start = tf.where(found, tf.gather(span_start, chosen), -1)
    end = tf.where(found, tf.gather(span_end, chosen), -1)
    score = best
    if allow_no_answer:
        null = tf.math.unsorted_segment_min(start_logits[:, 0] + end_logits[:, 0],
                                            example_index, count)
        empty = ~found | (null - best > null_threshold)
        start = tf.where(empty, -1, start)
        end = tf.where(empty, -1, end)
        score = tf.where(empty, null, best)
    contexts = tf.gather(features["context"], chosen)
    return {"answer": char_substrings(contexts, start, end), "score": score, "start": start,
            "end": end}
