"""The `ner` head: word alignment, windows, decoding to character spans, training, CLI."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerabert.heads import registry
from kerabert.heads.tagging import MaskedTokenAccuracy, TokenClassificationHead
from kerabert.task import Task, load_model
from kerabert.training import compile_task

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def run(preprocessor, **batch):
    features, targets, weights = preprocessor(batch)
    features = {k: v.numpy() for k, v in features.items()}
    return features, None if targets is None else targets.numpy(), (
        None if weights is None else weights.numpy())


def fake_logits(features, tags_per_example, labels=LABELS):
    """Logits that put each word's wanted tag on every piece of it (so only the
    stitching decides which piece is read)."""
    rows, length = features["token_ids"].shape
    logits = np.zeros((rows, length, len(labels)), np.float32)
    for r in range(rows):
        tags = tags_per_example[features["example_index"][r]]
        for p in range(length):
            w = features["word_index"][r, p]
            if w >= 0:
                logits[r, p, labels.index(tags[w])] = 5.0 + r  # windows disagree on scores
    return logits


def test_registered_under_ner():
    assert registry.get("ner") is TokenClassificationHead


def test_words_split_into_pieces_and_vanishing_words_keep_one_label(tiny_tokenizer):
    head = TokenClassificationHead(labels=LABELS)
    pre = head.preprocessor(tiny_tokenizer, 16)
    words = [["John", "Smiths", "\u200b", "in", "Paris", "."]]
    tags = [["B-PER", "I-PER", "O", "O", "B-LOC", "O"]]
    features, targets, weights = run(pre, text=tf.ragged.constant(words),
                                     tags=tf.ragged.constant(tags))
    ids = features["token_ids"][0]
    unk = tiny_tokenizer.unknown_id
    smith, s = tiny_tokenizer.token_to_id("smith"), tiny_tokenizer.token_to_id("##s")
    # [CLS] john smith ##s [UNK](the zero-width word) in paris . [SEP]
    assert ids[:9].tolist() == [tiny_tokenizer.cls_id, 40, smith, s, unk, 35, 42, 62,
                                tiny_tokenizer.sep_id]
    assert features["word_index"][0, :9].tolist() == [-1, 0, 1, 1, 2, 3, 4, 5, -1]
    assert features["label_mask"][0, :9].tolist() == [0, 1, 1, 0, 1, 1, 1, 1, 0]
    assert targets[0, :9].tolist() == [-1, 1, 2, -1, 0, 0, 3, 0, -1]
    assert weights[0, :9].tolist() == [0, 1, 1, 0, 1, 1, 1, 1, 0]
    assert features["padding_mask"][0].sum() == 9


def test_label_all_pieces_labels_later_pieces_inside(tiny_tokenizer):
    head = TokenClassificationHead(labels=LABELS, label_all_pieces=True)
    pre = head.preprocessor(tiny_tokenizer, 16)
    _, targets, weights = run(pre, text=tf.ragged.constant([["Smiths", "films"]]),
                              tags=tf.ragged.constant([["B-PER", "O"]]))
    assert targets[0, :6].tolist() == [-1, 1, 2, 0, 0, -1]  # smith ##s film ##s
    assert weights[0, :6].tolist() == [0, 1, 1, 1, 1, 0]


def test_long_sentences_become_windows_each_word_labelled_once(tiny_tokenizer):
    head = TokenClassificationHead(labels=LABELS)
    pre = head.preprocessor(tiny_tokenizer, 8)  # 6 pieces a window, stride 3
    words = [["John", "Smiths", "went", "to", "Paris", "and", "London", "with", "films"],
             ["in"]]
    tags = [["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-LOC", "O", "O"], ["O"]]
    features, targets, weights = run(pre, text=tf.ragged.constant(words),
                                     tags=tf.ragged.constant(tags))
    assert features["token_ids"].shape[1] == 8
    first = features["example_index"] == 0
    assert first.sum() > 1  # 11 pieces need windows
    mask = features["label_mask"][first] > 0
    labelled = sorted(features["word_index"][first][mask].tolist())
    assert labelled == list(range(9))  # every word exactly once, none truncated
    assert (weights[first].sum()) == 9
    gold = [LABELS.index(t) for t in tags[0]]
    assert [gold[w] for w in features["word_index"][first][mask]] == \
        targets[first][mask].tolist()
    # Stitching reads each word from its owning window.
    logits = fake_logits(features, tags)
    decoded = head.decode(logits, features, {"text": words})
    assert decoded[0]["tags"] == tags[0]
    assert decoded[1]["tags"] == ["O"]
    assert [e["text"] for e in decoded[0]["entities"]] == ["John Smiths", "Paris", "London"]


def test_raw_text_entities_are_character_spans_of_the_original(tiny_tokenizer):
    # Arg-max decoding: the invalid `O I-PER` below is read by the CoNLL repair rule.
    head = TokenClassificationHead(labels=LABELS, decoding="argmax")
    pre = head.preprocessor(tiny_tokenizer, 8)
    texts = ["Éé John  Smiths, in Paris!", "", "paris"]
    features, _, _ = run(pre, text=tf.constant(texts))
    # Words: Éé(UNK) John Smiths , in Paris !  (I-PER after O is repaired to a start).
    wanted = [["O", "I-PER", "I-PER", "O", "O", "B-LOC", "O"], [], ["B-LOC"]]
    logits = fake_logits(features, wanted)
    decoded = head.decode(logits, features, {"text": texts})
    assert decoded[0]["words"] == ["Éé", "John", "Smiths", ",", "in", "Paris", "!"]
    entities = decoded[0]["entities"]
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in entities] == [
        ("John  Smiths", "PER", 3, 15), ("Paris", "LOC", 20, 25)]
    for e in entities:
        assert texts[0][e["start"]:e["end"]] == e["text"]
        assert 0.9 < e["score"] <= 1.0
    assert decoded[1] == {"entities": [], "words": [], "tags": []}
    assert decoded[2]["entities"][0]["text"] == "paris"

    served = head.serving_outputs(tf.constant(logits), {k: tf.constant(v)
                                                        for k, v in features.items()})
    served = {k: v.numpy() for k, v in served.items()}
    assert served["num_words"].tolist() == [7, 0, 1]
    assert [t.decode() for t in served["tags"][0]] == decoded[0]["tags"]
    assert served["num_entities"].tolist() == [2, 0, 1]
    assert served["entity_starts"][0].tolist() == [3, 20]
    assert served["entity_ends"][0].tolist() == [15, 25]
    assert served["entity_word_starts"][0].tolist() == [1, 5]
    assert [t.decode() for t in served["entity_types"][0]] == ["PER", "LOC"]
    assert served["entity_scores"][0] == pytest.approx([e["score"] for e in entities],
                                                       abs=1e-5)
    assert served["entity_starts"][1].tolist() == [-1, -1]


def test_masked_accuracy_ignores_unlabelled_positions():
    metric = MaskedTokenAccuracy()
    metric.update_state(np.array([[1, -1, 0]]),
                        np.array([[[0.1, 0.9], [0.9, 0.1], [0.2, 0.8]]]))
    assert float(metric.result()) == pytest.approx(0.5)


def test_adapt_builds_the_full_label_set():
    head = TokenClassificationHead()
    head.adapt({"tags": [["B-PER", "O"], ["I-LOC"]]})
    assert head.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    bioes = TokenClassificationHead(scheme="BIOES")
    bioes.adapt({"tags": [["S-PER"]]})
    assert bioes.labels == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    with pytest.raises(ValueError, match="not a IOB2 tag"):
        TokenClassificationHead(labels=["O", "S-PER"])


SENTENCES = [
    (["John", "Smith", "is", "in", "Paris", "."], ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
    (["the", "film", "was", "in", "London"], ["O", "O", "O", "O", "B-LOC"]),
    (["Smith", "and", "John", "went", "to", "Berlin"],
     ["B-PER", "O", "B-PER", "O", "O", "B-LOC"]),
    (["a", "good", "movie", "with", "John"], ["O", "O", "O", "O", "B-PER"]),
]


def test_train_save_reload_predict_and_evaluate_from_the_cli(tmp_path, tiny_backbone,
                                                             tiny_tokenizer, capsys):
    from kerabert.cli import main
    from kerabert.training import train

    lines = []
    for _ in range(6):
        for words, tags in SENTENCES:
            lines += [f"{w} NN {t}" for w, t in zip(words, tags)] + [""]
    data = tmp_path / "train.txt"
    data.write_text("-DOCSTART- -X- O\n\n" + "\n".join(lines), encoding="utf-8")
    model, report = train("ner", str(data), backbone=(tiny_backbone, tiny_tokenizer),
                          validation_data=str(data), sequence_length=16, batch_size=8,
                          epochs=8, learning_rate=3e-3, output_dir=tmp_path / "run",
                          verbose=0)
    history = report["history"]["loss"]
    assert history[-1] < history[0] / 2
    validation = report["validation"]
    assert validation["sentences"] == 24
    assert set(validation["per_type"]) == {"PER", "LOC"}
    assert validation["f1"] > 0.8

    reloaded = load_model(tmp_path / "run" / "model.keras")
    assert reloaded.head.labels == model.head.labels
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), "--text", "John Smith is in Paris."]) == 0
    printed = json.loads(capsys.readouterr().out.strip())
    found = {(e["text"], e["type"]) for e in printed["entities"]}
    assert ("Paris", "LOC") in found
    text = "John Smith is in Paris."
    for e in printed["entities"]:
        assert text[e["start"]:e["end"]] == e["text"]
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(data)]) == 0
    scores = json.loads(capsys.readouterr().out.strip())
    assert scores["f1"] == pytest.approx(validation["f1"])


def test_bad_tag_in_a_file_names_file_and_line(tmp_path):
    head = TokenClassificationHead(labels=LABELS)
    path = tmp_path / "bad.txt"
    path.write_text("John B-PER\nworks B-ORG\n", encoding="utf-8")
    from kerabert.data import DataError

    with pytest.raises(DataError, match=r"bad\.txt:2: tag 'B-ORG'"):
        head.read(str(path))


def test_config_round_trip():
    head = TokenClassificationHead(labels=LABELS, scheme="iob2", dropout=0.2,
                                   label_all_pieces=True, stride=10, case_feature=False,
                                   case_dim=8, decoding="argmax")
    again = TokenClassificationHead.from_config(head.get_config())
    assert again.get_config() == head.get_config() == {
        "labels": LABELS, "scheme": "IOB2", "dropout": 0.2, "label_all_pieces": True,
        "stride": 10, "case_feature": False, "case_dim": 8, "decoding": "argmax"}
    defaults = TokenClassificationHead(labels=LABELS).get_config()
    assert (defaults["case_feature"], defaults["case_dim"], defaults["decoding"]) == (
        True, 16, "viterbi")
    assert TokenClassificationHead.from_config(defaults).get_config() == defaults
    with pytest.raises(ValueError, match="decoding must be one of viterbi, argmax"):
        TokenClassificationHead(decoding="crf")


def test_an_old_config_without_the_new_keys_keeps_the_old_behaviour():
    old = {"labels": LABELS, "scheme": "IOB2", "dropout": 0.1, "label_all_pieces": False,
           "stride": None}
    head = TokenClassificationHead.from_config(old)
    assert head.case_feature is False and head.decoding == "argmax"
    assert head.extra_inputs() == {}
