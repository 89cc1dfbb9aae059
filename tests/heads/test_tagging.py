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


@pytest.mark.slow
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


# -- case feature ----------------------------------------------------------------------------
TRICKY_WORDS = ["U.S.", "McDonald", "IBM", "paris", "1996", "Zürich", "Smiths", "A",
                "ÉTÉ", "iPhone", "straße", "O'Neil", "東京", "Ελλάδα", "МОСКВА", "-", "x1"]
TRICKY_CASES = [3, 4, 3, 1, 5, 2, 2, 2, 3, 4, 1, 4, 5, 2, 3, 5, 1]


def test_word_case_classes_of_tricky_words():
    from kerabert.heads.word_shape import word_case

    assert [word_case(w) for w in TRICKY_WORDS] == TRICKY_CASES


def test_case_ids_of_pre_split_words_every_piece_gets_its_word_class(tiny_tokenizer):
    head = TokenClassificationHead(labels=LABELS)
    pre = head.preprocessor(tiny_tokenizer, 64)
    features, _, _ = run(pre, text=tf.ragged.constant([TRICKY_WORDS, ["John"]]))
    cases, words = features["case_ids"], features["word_index"]
    assert cases.dtype == np.int32 and cases.shape == words.shape
    assert (cases[words < 0] == 0).all()  # [CLS], [SEP], padding
    assert cases[0, 0] == 0 and cases[1, :3].tolist() == [0, 2, 0]
    for position in np.nonzero(words[0] >= 0)[0]:
        assert cases[0, position] == TRICKY_CASES[words[0, position]]
    assert (words[0] == 0).sum() == 4  # U.S. is four pieces, all UPPER
    assert sorted(set(words[0][words[0] >= 0])) == list(range(len(TRICKY_WORDS)))


def test_case_ids_of_raw_strings_agree_with_pre_split_words(tiny_tokenizer):
    head = TokenClassificationHead(labels=LABELS)
    pre = head.preprocessor(tiny_tokenizer, 32)
    texts = ["John McDonald visited IBM in Zürich 1996 paris ÉTÉ",
             "the  Films  of iPhone", "", "Ελλάδα MOSCOW 2024"]
    raw, _, _ = run(pre, text=tf.constant(texts))
    split, _, _ = run(pre, text=tf.ragged.constant([t.split() for t in texts]))
    for name in ("token_ids", "word_index", "case_ids"):
        np.testing.assert_array_equal(raw[name], split[name])
    assert raw["case_ids"][0, 1:6].tolist() == [2, 4, 1, 3, 1]
    # Raw text is split BERT-style: `U.S.` is the words U . S . there.
    dotted, _, _ = run(pre, text=tf.constant(["U.S. Smith"]))
    assert dotted["case_ids"][0, :8].tolist() == [0, 2, 5, 2, 5, 2, 0, 0]


def test_graph_and_python_word_cases_agree_on_random_words():
    import tensorflow_text as tf_text

    from kerabert.heads.word_shape import case_classes, word_case

    rng = np.random.default_rng(0)
    alphabet = list("aZbY09.-'") + ["é", "É", "ß", "ÿ", "Ÿ", "ǅ", "ω", "Ω", "я", "Я",
                                      "ª", "×", "東", "😀", "ﬁ"]
    words = ["".join(rng.choice(alphabet, size=rng.integers(0, 6))) for _ in range(400)]
    data = tf.cast(tf_text.ByteSplitter().split(tf.constant(words)), tf.int32)
    lengths = tf.cast(data.row_lengths(), tf.int32)[:, tf.newaxis]
    graph = case_classes(data.to_tensor(-1), tf.zeros_like(lengths), lengths)[:, 0]
    assert graph.numpy().tolist() == [word_case(w) for w in words]
    assert set(graph.numpy().tolist()) == {1, 2, 3, 4, 5}


def test_case_feature_is_a_model_input_and_changes_the_logits(tiny_backbone, tiny_tokenizer):
    keras.utils.set_random_seed(0)
    model = Task(tiny_backbone, TokenClassificationHead(labels=LABELS), tiny_tokenizer, 16)
    assert set(model.input_names) == {"token_ids", "segment_ids", "padding_mask", "case_ids"}
    assert model.get_layer("case_embedding").get_weights()[0].shape == (6, 16)
    pre = model.head.preprocessor(tiny_tokenizer, 16)
    lower, _, _ = run(pre, text=tf.constant(["john smith in paris"]))
    upper, _, _ = run(pre, text=tf.constant(["John SMITH in Paris"]))
    np.testing.assert_array_equal(lower["token_ids"], upper["token_ids"])  # uncased
    logits = [model.predict_on_batch({k: f[k] for k in model.input_names})
              for f in (lower, upper)]
    assert not np.allclose(logits[0][0, 1:3], logits[1][0, 1:3])  # John, SMITH differ
    np.testing.assert_allclose(logits[0][0, 3], logits[1][0, 3], atol=1e-5)  # "in" same

    plain = Task(tiny_backbone, TokenClassificationHead(labels=LABELS, case_feature=False),
                 tiny_tokenizer, 16)
    assert set(plain.input_names) == {"token_ids", "segment_ids", "padding_mask"}
    assert "case_ids" not in plain.head.preprocessor(tiny_tokenizer, 16)(
        {"text": tf.constant(["a"])})[0]


# -- decoding --------------------------------------------------------------------------------
def test_transitions_follow_the_scheme():
    from kerabert.heads.tag_decoding import transitions

    allowed, start, end = transitions(LABELS, "IOB2")
    i_per, b_per, i_loc = LABELS.index("I-PER"), LABELS.index("B-PER"), LABELS.index("I-LOC")
    assert not start[i_per] and start[b_per] and end.all()
    assert allowed[b_per, i_per] and allowed[i_per, i_per]
    assert not allowed[0, i_per] and not allowed[b_per, i_loc]
    bioes = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC"]
    allowed, start, end = transitions(bioes, "BIOES")
    index = {label: i for i, label in enumerate(bioes)}
    assert [bioes[j] for j in np.nonzero(allowed[index["B-PER"]])[0]] == ["I-PER", "E-PER"]
    assert [bioes[j] for j in np.nonzero(allowed[index["E-PER"]])[0]] == [
        "O", "B-PER", "S-PER", "B-LOC"]
    assert [bioes[j] for j in np.nonzero(start)[0]] == ["O", "B-PER", "S-PER", "B-LOC"]
    assert [bioes[j] for j in np.nonzero(~end)[0]] == ["B-PER", "I-PER", "B-LOC"]


@pytest.mark.parametrize("scheme, labels", [
    ("IOB2", LABELS), ("BIOES", ["O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC"]),
    ("IOB1", LABELS)])
def test_viterbi_finds_the_best_valid_sequence(scheme, labels):
    import itertools

    from kerabert.heads.tag_decoding import transitions, viterbi

    allowed, start, end = transitions(labels, scheme)
    rng = np.random.default_rng(1)
    for _ in range(30):
        words = int(rng.integers(1, 5))
        log_probs = np.log(rng.dirichlet(np.ones(len(labels)) * 0.3, size=words))
        best, best_score = None, -np.inf
        for path in itertools.product(range(len(labels)), repeat=words):
            ok = start[path[0]] and end[path[-1]] and all(
                allowed[a, b] for a, b in zip(path, path[1:]))
            score = sum(log_probs[t, k] for t, k in enumerate(path))
            if ok and score > best_score:
                best, best_score = list(path), score
        assert viterbi(log_probs, allowed, start, end).tolist() == best


def _random_batch(tokenizer, head, texts, seed):
    pre = head.preprocessor(tokenizer, 8)  # short windows: words stitched across rows
    features, _, _ = run(pre, text=tf.constant(texts))
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, features["token_ids"].shape + (len(head.labels),))
    return features, logits.astype(np.float32)


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES"])
def test_decode_and_serving_outputs_agree_on_random_logits(tiny_tokenizer, scheme):
    from kerabert.data.conll import labels_for
    from kerabert.heads.tag_decoding import transitions

    labels = labels_for(["PER", "LOC", "ORG"], scheme)
    head = TokenClassificationHead(labels=labels, scheme=scheme)
    argmax = TokenClassificationHead(labels=labels, scheme=scheme, decoding="argmax")
    allowed, start, end = transitions(labels, scheme)
    texts = ["John Smith went to Paris and London with the films of Google", "",
             "a film", "paris , london , berlin , city , river , music , book , song ."]
    changed = 0
    for seed in range(5):
        features, logits = _random_batch(tiny_tokenizer, head, texts, seed)
        decoded = head.decode(logits, features, {"text": texts})
        served = head.serving_outputs(tf.constant(logits),
                                      {k: tf.constant(v) for k, v in features.items()})
        served = {k: v.numpy() for k, v in served.items()}
        for row, prediction in enumerate(decoded):
            n = len(prediction["tags"])
            assert served["num_words"][row] == n
            assert [t.decode() for t in served["tags"][row][:n]] == prediction["tags"]
            ids = [labels.index(t) for t in prediction["tags"]]
            if ids:  # valid in the scheme
                assert start[ids[0]] and end[ids[-1]]
                assert all(allowed[a, b] for a, b in zip(ids, ids[1:]))
            assert served["num_entities"][row] == len(prediction["entities"])
            assert served["entity_scores"][row][:len(prediction["entities"])] == \
                pytest.approx([e["score"] for e in prediction["entities"]], abs=1e-5)
        plain = argmax.decode(logits, features, {"text": texts})
        changed += sum(p["tags"] != q["tags"] for p, q in zip(plain, decoded))
    assert changed  # the constraint mattered on these logits


def test_viterbi_repairs_o_i_per_and_reports_the_chosen_tags_probability(tiny_tokenizer):
    texts = [["John", "Smith", "lives"]]
    # Per word: O 0.5 / B-PER 0.4 / I-PER 0.1; then I-PER 0.8; then O.
    probs = np.array([[0.5, 0.4, 0.1, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0, 0.0],
                      [0.9, 0.05, 0.05, 0.0, 0.0]]) + 1e-6
    results = {}
    for decoding in ("argmax", "viterbi"):
        head = TokenClassificationHead(labels=LABELS, decoding=decoding)
        features, _, _ = run(head.preprocessor(tiny_tokenizer, 16),
                             text=tf.ragged.constant(texts))
        logits = np.zeros(features["token_ids"].shape + (5,), np.float32)
        for p, w in enumerate(features["word_index"][0]):
            if w >= 0:
                logits[0, p] = np.log(probs[w])
        decoded = head.decode(logits, features, {"text": texts})[0]
        served = head.serving_outputs(tf.constant(logits),
                                      {k: tf.constant(v) for k, v in features.items()})
        assert [t.decode() for t in served["tags"].numpy()[0]] == decoded["tags"]
        scores = served["tag_scores"].numpy()[0]
        chosen = [probs[w, LABELS.index(t)] / probs[w].sum()
                  for w, t in enumerate(decoded["tags"])]
        np.testing.assert_allclose(scores, chosen, rtol=1e-4)
        results[decoding] = decoded
    assert results["argmax"]["tags"] == ["O", "I-PER", "O"]
    assert results["viterbi"]["tags"] == ["B-PER", "I-PER", "O"]
    assert results["viterbi"]["entities"][0]["text"] == "John Smith"
    assert results["viterbi"]["entities"][0]["score"] == pytest.approx((0.4 + 0.8) / 2,
                                                                        abs=1e-4)


# -- saved models ----------------------------------------------------------------------------
def _without_keys(path, target, keys):
    """A copy of the .keras file at `path` whose head config lacks `keys` (an old file)."""
    import zipfile

    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                head = config["config"]["head"]["config"]
                for key in keys:
                    head.pop(key)
                data = json.dumps(config).encode()
            out.writestr(item, data)


def test_saved_models_reload_with_their_options_and_old_files_as_before(
        tmp_path, tiny_backbone, tiny_tokenizer):
    texts = {"text": ["John SMITH is in Paris .", "the film"]}
    keras.utils.set_random_seed(0)
    model = Task(tiny_backbone, TokenClassificationHead(labels=LABELS), tiny_tokenizer, 16)
    model.save(tmp_path / "new.keras")
    again = load_model(tmp_path / "new.keras")
    assert again.head.get_config() == model.head.get_config()
    assert "case_ids" in again.input_names
    assert again.predict_examples(texts) == model.predict_examples(texts)

    old = Task(tiny_backbone, TokenClassificationHead(labels=LABELS, case_feature=False,
                                                      decoding="argmax"), tiny_tokenizer, 16)
    old.save(tmp_path / "old.keras")
    _without_keys(tmp_path / "old.keras", tmp_path / "older.keras",
                  ["case_feature", "case_dim", "decoding"])
    loaded = load_model(tmp_path / "older.keras")
    assert loaded.head.case_feature is False and loaded.head.decoding == "argmax"
    assert set(loaded.input_names) == {"token_ids", "segment_ids", "padding_mask"}
    assert loaded.predict_examples(texts) == old.predict_examples(texts)
