"""Valid tag sequences for the `ner` head: constrained Viterbi over per-word log-probabilities.

Arg-max decoding picks each word's most probable tag on its own and can give a sequence
the scheme forbids (`O I-PER`, `B-PER I-LOC`), which is then read by the CoNLL repair
rule. `decoding="viterbi"` instead picks the most probable *valid* sequence: the one
that maximises the sum of the words' log-probabilities among the sequences whose every
transition the scheme allows (`transitions`):

- IOB2: `I-X` only after `B-X` or `I-X` (so never first);
- IOB1: `B-X` only after `B-X` or `I-X` (it separates two adjacent `X` entities);
- BIOES: after `B-X` or `I-X` only `I-X` or `E-X`; elsewhere (first word, after `O`,
  `E-Y`, `S-Y`) only `O`, `B-Y` or `S-Y`; the last word is not `B-X` or `I-X`.

A forbidden transition costs `PENALTY` rather than minus infinity, so that a label set
with no valid sequence at all still decodes (to the least invalid one) and no NaN can
appear. The same algorithm runs in numpy (`viterbi`, for `predict_examples`) and in
TensorFlow (`viterbi_in_graph`, for exports: dense ops and a `tf.while_loop` over the
word axis, which TFLite runs as its `While` op); both give the same tags.
"""

from __future__ import annotations

import numpy as np

from kerabert.data.conll import check_scheme, split_tag

DECODINGS = ("viterbi", "argmax")
PENALTY = -1e4  # the score of a forbidden transition (log-probabilities are >> -1e4)


def transitions(labels, scheme="IOB2"):
    """The scheme's rules over `labels`, as boolean numpy arrays.

    Returns:
        `(allowed, start, end)`: `allowed[i, j]` whether label `j` may follow label
        `i`; `start[j]` whether a sentence may begin with `j`; `end[i]` whether it may
        end with `i`.

    Example:
    ```python
    allowed, start, end = transitions(["O", "B-PER", "I-PER"])
    allowed[0, 2], allowed[1, 2], start[2]  # (False, True, False)
    ```
    """
    scheme = check_scheme(scheme)
    parts = [split_tag(label) for label in labels]

    def may_follow(previous, current):
        (before, before_kind), (prefix, kind) = previous, current
        continues = before in ("B", "I") and before_kind == kind
        if scheme == "IOB2":
            return prefix != "I" or continues
        if scheme == "IOB1":
            return prefix != "B" or continues
        if before in ("B", "I"):  # BIOES: inside an entity
            return prefix in ("I", "E") and before_kind == kind
        return prefix in ("O", "B", "S")

    outside = ("O", "")
    allowed = np.array([[may_follow(p, c) for c in parts] for p in parts], bool).reshape(
        len(parts), len(parts))
    start = np.array([may_follow(outside, c) for c in parts], bool)
    end = np.array([scheme != "BIOES" or p[0] not in ("B", "I") for p in parts], bool)
    return allowed, start, end


def _penalties(allowed, start, end):
    cost = lambda ok: np.where(ok, 0.0, PENALTY)  # noqa: E731
    return cost(allowed), cost(start), cost(end)


def viterbi(log_probs, allowed, start, end):
    """The best valid tag ids of one sentence.

    Args:
        log_probs: `[words, labels]` log-probabilities.
        allowed, start, end: from `transitions`.

    Returns:
        An int numpy array `[words]`.

    Example:
    ```python
    rules = transitions(["O", "B-PER", "I-PER"])
    viterbi(np.log([[0.5, 0.4, 0.1], [0.1, 0.1, 0.8]]), *rules)  # [1, 2]: B-PER I-PER
    # (arg-max: O I-PER)
    ```
    """
    log_probs = np.asarray(log_probs, np.float64)
    words = log_probs.shape[0]
    if words == 0:
        return np.zeros(0, int)
    move, first, last = _penalties(allowed, start, end)
    score = log_probs[0] + first
    back = np.zeros(log_probs.shape, int)
    for t in range(1, words):
        candidates = score[:, None] + move  # [previous, current]
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[t]
    best = [int((score + last).argmax())]
    for t in range(words - 1, 0, -1):
        best.append(int(back[t][best[-1]]))
    return np.array(best[::-1], int)


def viterbi_in_graph(log_probs, present, allowed, start, end):
    """`viterbi` over a batch, in the TensorFlow graph.

    Args:
        log_probs: float32 `[batch, words, labels]`.
        present: bool `[batch, words]`, true on each example's words (a prefix).
        allowed, start, end: from `transitions`.

    Returns:
        int32 `[batch, words]`: the tag ids (past an example's words: its last tag).
    """
    import tensorflow as tf

    move, first, last = (tf.constant(a, tf.float32) for a in _penalties(allowed, start, end))
    labels = len(start)
    emissions = tf.transpose(tf.cast(log_probs, tf.float32), [1, 0, 2])  # [W, B, L]
    present = tf.transpose(present, [1, 0])  # [W, B]
    width = tf.shape(emissions)[0]
    steps = tf.range(width)[:, tf.newaxis, tf.newaxis]
    stay = tf.range(labels)[tf.newaxis, :]

    def forward(t, score, back):
        candidates = score[:, :, tf.newaxis] + move[tf.newaxis]  # [B, previous, current]
        pointer = tf.argmax(candidates, axis=1, output_type=tf.int32)
        moved = tf.reduce_max(candidates, axis=1) + tf.gather(emissions, t)
        # Past an example's last word the state stays as it was.
        here = tf.gather(present, t)[:, tf.newaxis]
        score = tf.where(here, moved, score)
        pointer = tf.where(here, pointer, tf.broadcast_to(stay, tf.shape(pointer)))
        back = tf.where(tf.equal(steps, t), pointer[tf.newaxis], back)
        return t + 1, score, back

    score = tf.gather(emissions, 0) + first[tf.newaxis]
    back = tf.zeros(tf.shape(emissions), tf.int32)
    _, score, back = tf.while_loop(lambda t, *_: t < width, forward,
                                   (tf.constant(1), score, back))
    best = tf.argmax(score + last[tf.newaxis], axis=-1, output_type=tf.int32)  # [B]
    rows = tf.range(width)[:, tf.newaxis]

    def backward(t, current, tags):
        tags = tf.where(tf.equal(rows, t), current[tf.newaxis], tags)
        previous = tf.gather(tf.gather(back, t), current[:, tf.newaxis], batch_dims=1)[:, 0]
        return t - 1, previous, tags

    tags = tf.zeros(tf.shape(present), tf.int32)
    _, _, tags = tf.while_loop(lambda t, *_: t >= 0, backward, (width - 1, best, tags))
    return tf.transpose(tags, [1, 0])
