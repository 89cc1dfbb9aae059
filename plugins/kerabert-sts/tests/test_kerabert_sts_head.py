"""The sentence-similarity head: kerabert's conformance kit, the reader, decoding and scores."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

from kerabert.data import DataError
from kerabert.testing import check_head, tiny_backbone, tiny_tokenizer
from kerabert_sts import SentenceSimilarityHead, pearson, spearman

EXAMPLES = {
    "text": ["a man plays a guitar", "a dog runs in the park", "the stock market fell",
             "a woman is cooking", "kids play football", "a cat sleeps",
             "the team won the game", "rain falls on the city"],
    "text_pair": ["someone plays music", "a dog is running outside", "a man plays a guitar",
                  "a person cooks dinner", "children are playing a game", "the market rose",
                  "the team lost the game", "it is raining in town"],
    "score": [3.8, 4.5, 0.0, 4.2, 3.9, 0.2, 2.5, 4.6],
}


@pytest.mark.slow
def test_head_conforms_to_the_contract(tmp_path):
    report = check_head(SentenceSimilarityHead, EXAMPLES, options={"score_range": (0, 5)},
                        workdir=tmp_path)
    assert report.ok
    assert report.result("save-reload").status == "passed"
    assert report.result("export").status in ("passed", "skipped")


@pytest.mark.slow
def test_cls_pooling_and_bce_loss_conform():
    report = check_head(SentenceSimilarityHead, EXAMPLES,
                        options={"pooling": "cls", "loss": "bce"},
                        steps=["train", "predict"], export=False)
    assert report.ok, report
    assert {s.step for s in report.steps if s.status == "passed"} >= {"train", "predict"}


def test_installed_distribution_provides_the_head():
    from kerabert.heads import available, get

    try:
        version = importlib.metadata.version("kerabert-sts")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("kerabert-sts is not installed (pip install -e plugins/kerabert-sts)")
    assert get("sentence-similarity") is SentenceSimilarityHead
    info = next(i for i in available() if i.name == "sentence-similarity")
    assert (info.distribution, info.version) == ("kerabert-sts", version)
    assert (info.fields, info.target_fields) == (("text", "text_pair"), ("score",))


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reader_takes_the_sts_b_layout_and_names_bad_rows(tmp_path):
    good = write(tmp_path / "sts.tsv", "genre\tsentence1\tsentence2\tscore\n"
                 "news\tA plane takes off.\tAn air plane is taking off.\t5.000\n"
                 "forum\tA man plays a flute.\tA man plays a bamboo flute.\t3.800\n")
    examples = SentenceSimilarityHead().read(good)
    assert examples["text"] == ["A plane takes off.", "A man plays a flute."]
    assert examples["text_pair"][1] == "A man plays a bamboo flute."
    assert examples["score"] == [5.0, 3.8]

    bad = write(tmp_path / "bad.tsv", "sentence1\tsentence2\tscore\n"
                "a\tb\t1\nc\td\thigh\ne\tf\t7\n")
    with pytest.raises(DataError, match=r"bad.tsv:3: score 'high' is not a number"):
        SentenceSimilarityHead().read(bad)
    outside = write(tmp_path / "outside.tsv", "sentence1\tsentence2\tscore\na\tb\t1\ne\tf\t7\n")
    with pytest.raises(DataError, match=r"outside.tsv:3: score 7 is outside score_range "
                                        r"\(0.0, 5.0\)"):
        SentenceSimilarityHead(score_range=(0, 5)).read(outside, score_column="score")
    kept = SentenceSimilarityHead(score_range=(0, 5)).read(bad, skip_bad=True)
    assert kept["score"] == [1.0] and kept.skipped == 2 and kept.lines == [2]


def test_reader_without_scores_gives_pairs_for_prediction(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"text": "a", "text_pair": "b"}\n')
    examples = SentenceSimilarityHead().read(path)
    assert examples == {"text": ["a"], "text_pair": ["b"]}


def test_adapt_learns_the_score_range_and_decode_maps_back():
    head = SentenceSimilarityHead()
    head.adapt({"score": [1.0, 3.0, 2.0]})
    assert head.get_config()["score_range"] == [1.0, 3.0]
    predictions = head.decode(np.array([[0.0], [0.5], [1.0]]), {}, {})
    assert predictions == [{"score": 1.0}, {"score": 2.0}, {"score": 3.0}]
    with pytest.raises(ValueError, match="every training score is 2"):
        SentenceSimilarityHead().adapt({"score": [2, 2]})
    with pytest.raises(ValueError, match="pooling must be one of"):
        SentenceSimilarityHead(pooling="max")


def test_score_reports_pearson_spearman_and_mse():
    head = SentenceSimilarityHead(score_range=(0, 5))
    predictions = [{"score": s} for s in (0.5, 2.0, 2.5, 4.0)]
    scores = head.score(predictions, {"score": [0.0, 2.0, 3.0, 5.0]})
    assert scores["pearson"] == pytest.approx(np.corrcoef([0.5, 2, 2.5, 4], [0, 2, 3, 5])[0, 1])
    assert scores["spearman"] == pytest.approx(1.0)
    assert scores["mse"] == pytest.approx((0.25 + 0 + 0.25 + 1) / 4)
    assert scores["examples"] == 4


def test_correlations_match_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 6, size=200).astype(float)  # heavily tied, like STS scores
    predicted = gold + rng.normal(scale=1.5, size=200)
    assert pearson(predicted, gold) == pytest.approx(stats.pearsonr(predicted, gold)[0])
    assert spearman(predicted, gold) == pytest.approx(stats.spearmanr(predicted, gold)[0])


def test_preprocessor_packs_pairs_and_rescales_targets():
    tokenizer = tiny_tokenizer(EXAMPLES["text"] + EXAMPLES["text_pair"])
    head = SentenceSimilarityHead(score_range=(0, 5))
    features, targets, weights = head.preprocessor(tokenizer, 16)(
        {"text": np.array(["a cat sleeps"]), "text_pair": np.array(["the market rose"]),
         "score": np.array([4.0], dtype=np.float32)}
    )
    # [CLS] a cat sleeps [SEP] the market rose [SEP]
    assert features["segment_ids"].numpy()[0, :9].tolist() == [0] * 5 + [1] * 4
    assert int(features["padding_mask"].numpy().sum()) == 9
    assert targets.numpy().tolist() == [[pytest.approx(0.8)]]
    assert weights is None


def test_mean_pooling_ignores_padding():
    import keras

    from kerabert.task import Task

    keras.utils.set_random_seed(0)
    tokenizer = tiny_tokenizer(EXAMPLES["text"] + EXAMPLES["text_pair"])
    head = SentenceSimilarityHead(score_range=(0, 5), pooling="mean", dropout=0.0)
    model = Task(tiny_backbone(tokenizer.vocabulary_size), head, tokenizer, 32)
    short = {"text": ["a cat sleeps"], "text_pair": ["a dog runs"]}
    alone = model.predict_examples(short)[0]["score"]
    long_text = "the team won the game and the stock market fell in the city"
    padded = model.predict_examples({"text": short["text"] + [long_text],
                                     "text_pair": short["text_pair"] + [long_text]})
    assert padded[0]["score"] == pytest.approx(alone, abs=1e-5)
