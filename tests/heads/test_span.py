"""The qa head: windows and offsets, targets at window edges, decoding, serving, training."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerabert.data.tables import DataError
from kerabert.heads.span import QuestionAnsweringHead
from kerabert.heads.span_decoding import decode_answers, decode_answers_in_graph
from kerabert.heads.span_preprocessor import QuestionAnsweringPreprocessor

WORDS = "the film was good and the actor was very bad but the story was fun".split()


def preprocess(tokenizer, questions, contexts, answers=None, sequence_length=16,
               max_query_length=4, doc_stride=3):
    preprocessor = QuestionAnsweringPreprocessor(
        tokenizer, sequence_length, max_query_length=max_query_length, doc_stride=doc_stride
    )
    batch = {"question": tf.constant(questions), "context": tf.constant(contexts)}
    if answers is not None:
        batch["answer_start"] = tf.constant([a[0] for a in answers])
        batch["answer_text"] = tf.constant([a[1] for a in answers])
    features, targets, _ = preprocessor(batch)
    features = {k: v.numpy() for k, v in features.items()}
    return features, None if targets is None else targets.numpy()


def reference_windows(num_tokens, window_size, doc_stride):
    """run_squad.py's doc spans: (start, length) pairs."""
    spans, start = [], 0
    while start < num_tokens:
        length = min(num_tokens - start, window_size)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans or [(0, 0)]


def reference_max_context(spans, position):
    """run_squad.py's `_check_is_max_context`: the index of the best span."""
    best, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best is None or score > best:
            best, best_index = score, index
    return best_index


@pytest.mark.parametrize("sequence_length, doc_stride, words", [
    (16, 3, 15), (16, 5, 15), (16, 20, 15), (12, 2, 30), (16, 3, 4), (20, 4, 40),
])
@pytest.mark.slow
def test_windows_and_max_context_follow_the_reference(tiny_tokenizer, sequence_length,
                                                      doc_stride, words):
    context = " ".join((WORDS * 3)[:words])
    features, _ = preprocess(tiny_tokenizer, ["what film ?"], [context],
                             sequence_length=sequence_length, doc_stride=doc_stride)
    window_size = sequence_length - 3 - 3  # [CLS] what film ? [SEP] ... [SEP]
    spans = reference_windows(words, window_size, doc_stride)
    assert features["example_index"].tolist() == [0] * len(spans)
    for w, (start, length) in enumerate(spans):
        tokens = [tiny_tokenizer.id_to_token(i) for i in features["token_ids"][w]]
        assert tokens[:5] == ["[CLS]", "what", "film", "?", "[SEP]"]
        assert tokens[5 : 5 + length] == context.split()[start : start + length]
        assert tokens[5 + length] == "[SEP]"
        assert features["padding_mask"][w].sum() == 6 + length
        assert features["segment_ids"][w].tolist() == (
            [0] * 5 + [1] * (length + 1) + [0] * (sequence_length - 6 - length)
        )
        expected = [reference_max_context(spans, start + j) == w for j in range(length)]
        assert features["max_context"][w][5 : 5 + length].astype(bool).tolist() == expected
        assert features["max_context"][w][:5].sum() == 0


def test_offsets_are_characters_of_the_original_context(tiny_tokenizer):
    # Multi-byte characters, tabs, newlines and runs of spaces before the words.
    contexts = ["Ünïcödé 東京\t the  FILM\nwas  good !", "  \u00a0 café — John   Smith."]
    features, _ = preprocess(tiny_tokenizer, ["what ?", "who ?"], contexts,
                             sequence_length=32, doc_stride=8)
    for w, context in enumerate(contexts):
        starts, ends = features["offset_starts"][w], features["offset_ends"][w]
        inside = starts >= 0
        pieces = [context[s:e] for s, e in zip(starts[inside], ends[inside])]
        tokens = [tiny_tokenizer.id_to_token(i) for i in features["token_ids"][w][inside]]
        for piece, token in zip(pieces, tokens):
            if token != "[UNK]":
                assert piece.lower() == token
            assert piece and not piece.isspace()
        assert "".join(pieces) == "".join(context.split())  # every character, in order
    assert features["context"].tolist() == [c.encode() for c in contexts]


@pytest.mark.slow
def test_targets_at_window_edges_and_outside(tiny_tokenizer):
    context = " ".join(WORDS)  # 15 tokens; windows of 10 starting at 0, 3, 6
    starts = [len(" ".join(WORDS[:i])) + (1 if i else 0) for i in range(len(WORDS))]

    def answer(first, last):
        return starts[first], " ".join(WORDS[first : last + 1])

    cases = {
        "last token of window 0": (answer(9, 9), [[14, 14], [11, 11], [8, 8]]),
        "first token of window 2": (answer(6, 6), [[11, 11], [8, 8], [5, 5]]),
        "across the end of window 0": (answer(8, 10), [[0, 0], [10, 12], [7, 9]]),
        "only in the last window": (answer(13, 14), [[0, 0], [0, 0], [12, 13]]),
        "no answer": ((-1, ""), [[0, 0], [0, 0], [0, 0]]),
    }
    for name, (gold, expected) in cases.items():
        features, targets = preprocess(tiny_tokenizer, ["what film ?"], [context], [gold])
        assert targets.tolist() == expected, name
        for w, (s, e) in enumerate(targets):
            if s:
                text = context[features["offset_starts"][w][s] : features["offset_ends"][w][e]]
                assert text == gold[1], name


@pytest.mark.slow
def test_answer_offsets_count_characters_not_bytes(tiny_tokenizer):
    context = "東京 ünï — the city is paris ."
    start = context.index("paris")
    features, targets = preprocess(tiny_tokenizer, ["where ?"], [context], [(start, "paris")],
                                   sequence_length=32, doc_stride=8)
    s, e = targets[0]
    assert features["offset_starts"][0][s] == start
    assert features["offset_ends"][0][e] == start + len("paris")
    # An answer that starts inside a word still takes the whole word piece.
    features, targets = preprocess(tiny_tokenizer, ["where ?"], [context],
                                   [(start + 1, "aris")], sequence_length=32, doc_stride=8)
    assert targets[0].tolist() == [s, e]


def _features(example_index, starts, ends, max_context=None):
    starts = np.array(starts)
    return {
        "example_index": np.array(example_index),
        "offset_starts": starts,
        "offset_ends": np.array(ends),
        "max_context": np.ones_like(starts) if max_context is None else np.array(max_context),
        "context": np.array([b"x"] * len(example_index)),
    }


def test_decode_merges_windows_and_limits_answer_length():
    context = "aa bb cc dd ee ff"
    # Two windows of one question; positions 0-1 are [CLS] and the question.
    features = _features(
        [0, 0],
        [[-1, -1, 0, 3, 6, -1], [-1, -1, 6, 9, 12, 15]],
        [[-1, -1, 2, 5, 8, -1], [-1, -1, 8, 11, 14, 17]],
        max_context=[[0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]],
    )
    start = np.full((2, 6), -5.0)
    end = np.full((2, 6), -5.0)
    start[0, 4], end[0, 4] = 9.0, 9.0  # 'cc' in window 0, but not its max-context window
    start[1, 3], end[1, 5] = 4.0, 4.0  # 'dd ee ff' in window 1
    end[1, 3] = 3.5  # 'dd'
    start[0, 1] = 20.0  # a question position never starts an answer
    (result,) = decode_answers(start, end, features, [context], max_answer_length=3)
    assert result == {"answer": "dd ee ff", "score": 8.0, "start": 9, "end": 17}
    (result,) = decode_answers(start, end, features, [context], max_answer_length=2)
    assert result["answer"] == "dd" and result["score"] == 7.5
    assert context[result["start"] : result["end"]] == result["answer"]


def test_null_answer_threshold_and_n_best():
    context = "john smith"
    features = _features([0], [[-1, 0, 5]], [[-1, 4, 10]])
    start = np.array([[2.0, 1.0, -1.0]])
    end = np.array([[2.0, -1.0, 1.5]])  # best span 'john smith' = 2.5, null = 4.0
    options = dict(max_answer_length=5, allow_no_answer=True)
    (result,) = decode_answers(start, end, features, [context], **options)
    assert (result["answer"], result["start"], result["end"]) == ("", -1, -1)
    assert result["score"] == result["null_score"] == 4.0
    (result,) = decode_answers(start, end, features, [context], null_threshold=2.0, **options)
    assert result["answer"] == "john smith" and result["score"] == 2.5
    (result,) = decode_answers(start, end, features, [context], return_n_best=3, **options)
    answers = [(e["answer"], e["score"]) for e in result["n_best"]]
    assert answers == [("", 4.0), ("john smith", 2.5), ("smith", 0.5)]
    assert sum(e["probability"] for e in result["n_best"]) == pytest.approx(1.0)
    (result,) = decode_answers(start, end, features, [context], max_answer_length=5)
    assert result["answer"] == "john smith" and "null_score" not in result


@pytest.mark.slow
@pytest.mark.parametrize("allow_no_answer", [False, True])
def test_serving_outputs_match_python_decoding(tiny_tokenizer, allow_no_answer):
    contexts = [" ".join(WORDS), "東京 is a city .", " ".join(WORDS[::-1] * 2)]
    features, _ = preprocess(tiny_tokenizer, ["what film ?", "where ?", "who ?"], contexts,
                             sequence_length=16, doc_stride=4)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(features["example_index"]), 2, 16)).astype("float32")
    logits[:, :, 0] += 1.5 if allow_no_answer else 0.0
    head = QuestionAnsweringHead(max_answer_length=4, allow_no_answer=allow_no_answer)
    expected = head.decode(logits, features, {"context": contexts})
    served = head.serving_outputs(tf.constant(logits),
                                  {k: tf.constant(v) for k, v in features.items()})
    served = {k: v.numpy() for k, v in served.items()}
    for i, e in enumerate(expected):
        assert served["answer"][i].decode() == e["answer"]
        assert (served["start"][i], served["end"][i]) == (e["start"], e["end"])
        assert served["score"][i] == pytest.approx(e["score"], abs=1e-4)
    if allow_no_answer:
        assert any(e["answer"] == "" for e in expected)


def test_head_registry_config_and_adapt():
    import kerabert

    head = kerabert.heads.create("qa", doc_stride=64, null_threshold=-1.0)
    assert isinstance(head, QuestionAnsweringHead)
    assert head.fields == ("question", "context")
    clone = QuestionAnsweringHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    head.adapt({"answer_start": [3, 0]})
    assert head.allow_no_answer is False
    v2 = QuestionAnsweringHead()
    v2.adapt({"answer_start": [3, -1]})
    assert v2.allow_no_answer is True


def qa_examples(count, seed=0):
    """Questions whose answer is the name after 'the city is' in a noisy context."""
    from kerabert.data.tables import Examples

    names = ["john smith", "paris", "london", "berlin", "google", "apple"]
    fillers = ["the film was good", "it is a story", "and the plot was dull", "this is fun"]
    rng = np.random.default_rng(seed)
    columns = {k: [] for k in ("id", "question", "context", "answer_start", "answer_text",
                               "answers")}
    for k in range(count):
        name = names[k % len(names)]
        before = " ".join(rng.choice(fillers, 1 + k % 3))
        after = " ".join(rng.choice(fillers, 2))
        context = f"{before} . the city is {name} . {after}"
        start = context.index(f"is {name}") + 3
        values = [f"q{k}", "what is the city ?", context, start, name, [name]]
        for column, value in zip(columns, values):
            columns[column].append(value)
    return Examples(columns, source="synthetic")


@pytest.mark.slow
def test_prepare_examples_reports_answers_that_fit_no_window(tiny_tokenizer):
    head = QuestionAnsweringHead(max_query_length=8, doc_stride=4)
    examples = qa_examples(6)
    long_answer = examples["context"][1][examples["answer_start"][1]:]
    examples["answer_text"][1] = long_answer  # longer than a 16-token window
    kept, windows = head.prepare_examples(qa_examples(6), tiny_tokenizer, 16)
    assert len(kept) == 6 and windows > 6
    with pytest.raises(DataError, match=r"synthetic: question 'q1': the answer .* fits in no "
                                         r"window of 16 tokens \(1 such question"):
        head.prepare_examples(examples, tiny_tokenizer, 16)
    kept, windows = head.prepare_examples(examples, tiny_tokenizer, 16, skip_bad=True)
    assert kept["id"] == ["q0", "q2", "q3", "q4", "q5"] and kept.skipped == 1
    assert windows > 5


@pytest.mark.slow
def test_train_predict_save_and_load(tmp_path, tiny_backbone, tiny_tokenizer):
    from kerabert.task import build_model, load_model
    from kerabert.training import compile_task

    keras.utils.set_random_seed(0)
    head = QuestionAnsweringHead(max_query_length=8, doc_stride=8, max_answer_length=4)
    examples = qa_examples(48)
    model = build_model(head, (tiny_backbone, tiny_tokenizer), sequence_length=24,
                        compile=False)
    compile_task(model, learning_rate=3e-3, total_steps=30, warmup_ratio=0.1)
    dataset = model.make_dataset(examples, batch_size=16, training=True, repeat=True, seed=0)
    history = model.fit(dataset, steps_per_epoch=10, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    metrics = model.evaluate_examples(qa_examples(24, seed=1), batch_size=8)
    assert metrics["f1"] > 80.0 and metrics["examples"] == 24

    test = qa_examples(4, seed=2)
    predictions = model.predict_examples({"question": test["question"],
                                          "context": test["context"]}, batch_size=3)
    for prediction, context in zip(predictions, test["context"]):
        assert context[prediction["start"] : prediction["end"]] == prediction["answer"]
    model.save(tmp_path / "qa.keras")
    loaded = load_model(tmp_path / "qa.keras")
    again = loaded.predict_examples({"question": test["question"], "context": test["context"]})
    assert [p["answer"] for p in again] == [p["answer"] for p in predictions]
    assert loaded.head.get_config() == head.get_config()


@pytest.mark.slow
def test_cli_train_evaluate_predict(tmp_path, tiny_tokenizer, capsys):
    from kerabert.backbone import save_backbone
    from kerabert.cli import main
    from tests.conftest import make_tiny_backbone

    save_backbone(make_tiny_backbone(), tiny_tokenizer, tmp_path / "backbone")
    examples = qa_examples(12)
    rows = [{"id": i, "question": q, "context": c,
             "answers": [{"text": t, "answer_start": s}]}
            for i, q, c, t, s in zip(examples["id"], examples["question"], examples["context"],
                                     examples["answer_text"], examples["answer_start"])]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    assert main(["train", "--head", "qa", "--train", str(data), "--validation", str(data),
                 "--backbone", str(tmp_path / "backbone"), "--output", str(out),
                 "--batch-size", "8", "--sequence-length", "24", "--epochs", "2",
                 "--head-option", "doc_stride=8"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["train_examples"] == 12
    # The reported F1 is the saved model's, scored here from its own predictions.
    import kerabert
    from kerabert.metrics.squad import squad_scores

    predictions = kerabert.load_model(out / "model.keras").predict_examples(
        {"question": examples["question"], "context": examples["context"]})
    expected = squad_scores([p["answer"] for p in predictions],
                            [[t] for t in examples["answer_text"]], version="1.1")["f1"]
    assert report["validation"]["f1"] == pytest.approx(expected, abs=1e-6)

    assert main(["evaluate", str(out), "--data", str(data)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["examples"] == 12 and {"exact_match", "f1"} <= set(metrics)

    context = "the film was good . the city is paris ."
    assert main(["predict", str(out), "--question", "what is the city ?",
                 "--context", context]) == 0
    (prediction,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert context[prediction["start"] : prediction["end"]] == prediction["answer"]
