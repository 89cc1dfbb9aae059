"""Pretrain-then-fine-tune round trip on a tiny model, through the CLI and the API."""

from __future__ import annotations

import json
import random

import keras
import numpy as np
import pytest

import kerabert
from kerabert.backbone import save_backbone
from kerabert.cli import main
from kerabert.pretraining import pretrain
from tests.conftest import TINY_VOCABULARY, make_tiny_backbone

WORDS = [w for w in TINY_VOCABULARY[5:] if not w.startswith("##")]


def _write_corpus(folder, documents=200, seed=0):
    """Documents made of a few repeated patterns, so a tiny model can learn them."""
    rng = random.Random(seed)
    patterns = [
        "the film was good and the actors were great .",
        "john smith is in paris on monday .",
        "the team played a game in london .",
        "what a boring and dull movie !",
    ]
    texts = []
    for _ in range(documents):
        lines = [rng.choice(patterns) for _ in range(rng.randint(2, 4))]
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))))
        texts.append("\n".join(lines))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.txt").write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    return folder


@pytest.mark.slow
def test_pretrain_then_fine_tune_round_trip(tmp_path, tiny_tokenizer, capsys):
    keras.utils.set_random_seed(0)
    base = tmp_path / "base"
    save_backbone(make_tiny_backbone(), tiny_tokenizer, base)
    corpus = _write_corpus(tmp_path / "corpus")
    adapted = tmp_path / "adapted"

    status = main([
        "pretrain", "--corpus", str(corpus), "--backbone", str(base), "--output", str(adapted),
        "--sequence-length", "32", "--batch-size", "16", "--max-steps", "30",
        "--head-warmup-steps", "5",
        # 30% held out: 64 rows, ~300 masked tokens, so accuracy is not a handful of tokens.
        "--learning-rate", "3e-3", "--holdout", "0.3", "--max-eval-sequences", "64",
    ])
    assert status == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert "no masked-LM head" in captured.err and "newly initialised" in captured.err
    assert report["steps"] == 30 and report["eval_rows"] == 64
    assert report["head_warmup"]["steps"] == 5 and "perplexity" in report["head_warmup"]["held_out"]
    # Held-out masked-token perplexity falls and accuracy rises on this regular text.
    assert report["after"]["perplexity"] < 0.7 * report["before"]["perplexity"]
    # Seen over seeds and oneDNN ISAs (AVX-512, AVX2, oneDNN off): before <= 0.03, after >= 0.07.
    assert (report["after"]["masked_token_accuracy"]
            > report["before"]["masked_token_accuracy"] + 0.02)
    assert {"config.json", "model.weights.h5", "tokenizer.json", "masked_lm_head.safetensors",
            "pretraining.json"} <= {p.name for p in adapted.iterdir()}

    # The folder is a backbone like any other, with the weights pretraining changed.
    backbone, tokenizer = kerabert.load_backbone(adapted)
    original, _ = kerabert.load_backbone(base)
    assert tokenizer.vocabulary == tiny_tokenizer.vocabulary
    assert not np.allclose(backbone.token_embedding.embeddings.numpy(),
                           original.token_embedding.embeddings.numpy())

    # Continuing from the folder reads the trained MLM head back.
    head = kerabert.heads.get("masked-lm")()
    model = kerabert.Task(backbone, head, tokenizer, 32)
    assert "loaded the masked-LM head" in head.load_checkpoint_weights(model, str(adapted))

    # `kerabert train --backbone DIR` fine-tunes from it.
    train_file = tmp_path / "train.tsv"
    rows = ["text\tlabel"] + ["a good and great film\tpositive",
                              "a dull and boring movie\tnegative"] * 8
    train_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    status = main([
        "train", "--head", "sentiment", "--train", str(train_file), "--validation",
        str(train_file), "--backbone", str(adapted), "--output", str(tmp_path / "task"),
        "--sequence-length", "32", "--batch-size", "8", "--epochs", "1",
    ])
    assert status == 0
    trained = kerabert.load_model(tmp_path / "task" / "model.keras")
    assert trained.backbone.vocabulary_size == len(TINY_VOCABULARY)
    fine_tuned = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fine_tuned["validation"]["examples"] == 16


@pytest.mark.slow
def test_masked_lm_with_next_sentence_and_whole_words(tmp_path, tiny_tokenizer):
    keras.utils.set_random_seed(0)
    corpus = _write_corpus(tmp_path / "corpus", documents=80)
    model, report = pretrain(
        corpus, backbone=(make_tiny_backbone(), tiny_tokenizer), sequence_length=32,
        batch_size=16, max_steps=8, learning_rate=1e-3, holdout=0.2, whole_word=True,
        next_sentence=True, verbose=0, log=None,
    )
    assert report["objectives"] == ["masked-lm", "next-sentence"]
    for when in ("before", "after"):
        expected = {"perplexity", "masked_token_accuracy", "next_sentence_accuracy"}
        assert expected <= set(report[when])
    assert set(model.output) == {"mlm", "next_sentence"}
    result = model.predict_examples({"text": ["the film was [MASK] ."], "text_pair": ["it was"]})
    assert len(result[0]["masks"]) == 1
    # The is-next probability is the softmax of the NSP logits, computed here directly.
    import tensorflow as tf

    features = tf.function(model.preprocess_function())(
        {"text": tf.constant(["the film was [MASK] ."]), "text_pair": tf.constant(["it was"])})
    logits = model({k: features[k] for k in model.input_names}, training=False)
    nsp = np.asarray(logits["next_sentence"], dtype=np.float64)[0]
    expected = np.exp(nsp[0]) / np.exp(nsp).sum()
    assert result[0]["is_next_score"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_head_warmup_trains_the_head_alone(tmp_path, tiny_tokenizer):
    from kerabert.data.corpus import Corpus
    from kerabert.heads.masked_lm import MaskedLMHead
    from kerabert.pretraining import _warm_up_head
    from kerabert.task import Task

    keras.utils.set_random_seed(0)
    corpus = Corpus(_write_corpus(tmp_path / "corpus", documents=40))
    model = Task(make_tiny_backbone(), MaskedLMHead(), tiny_tokenizer, 32)
    backbone_before = [w.numpy().copy() for w in model.backbone.weights]
    bias_before = model.get_layer("mlm_head")._bias.numpy().copy()
    _warm_up_head(model, corpus.packed(tiny_tokenizer, 32), None, 3, 1e-2, batch_size=8,
                  warmup_ratio=0.0, weight_decay=0.0, jit_compile=False, verbose=0, seed=0,
                  length_mode="dynamic")
    assert model.backbone.trainable
    for before, after in zip(backbone_before, model.backbone.weights):
        np.testing.assert_array_equal(before, after.numpy())
    assert not np.allclose(bias_before, model.get_layer("mlm_head")._bias.numpy())


@pytest.mark.slow
def test_held_out_figures_repeat_with_the_seed(tmp_path, tiny_tokenizer):
    corpus = _write_corpus(tmp_path / "corpus", documents=120)

    def before(seed):
        keras.utils.set_random_seed(seed)
        _, report = pretrain(corpus, backbone=(make_tiny_backbone(), tiny_tokenizer),
                             sequence_length=32, batch_size=16, max_steps=1, holdout=0.3,
                             seed=seed, verbose=0, log=None)
        return report["before"]

    first = before(0)
    assert before(0) == first  # same weights, same held-out masks
    assert before(1) != first


@pytest.mark.slow
def test_pretrain_resumes_from_its_backup_under_a_strategy(tmp_path, tiny_tokenizer):
    """`pretrain` runs through the fit core: a strategy, a precision, and a resume from
    the end-of-epoch backup (a leftover backup without `resume` is an error)."""
    import pytest

    from kerabert.callbacks import backup_epoch

    base = tmp_path / "base"
    save_backbone(make_tiny_backbone(), tiny_tokenizer, base)
    corpus = _write_corpus(tmp_path / "corpus", documents=40)
    output = tmp_path / "adapted"

    class CrashInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated crash")

    options = dict(backbone=str(base), output_dir=output, sequence_length=32, batch_size=16,
                   epochs=2, learning_rate=1e-3, holdout=0.2, max_eval_sequences=16,
                   strategy="one-device", precision="float32", verbose=0, log=None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(corpus, callbacks=[CrashInSecondEpoch()], **options)
    assert backup_epoch(output) == 1
    with pytest.raises(ValueError, match="resume"):
        pretrain(corpus, **options)
    model, report = pretrain(corpus, resume=True, **options)
    assert report["strategy"] == "one-device" and report["precision"] == "float32"
    assert report["resumed_from_epoch"] == 1 and report["epochs_run"] == 1
    steps_per_epoch = -(-report["train_rows"] // 16)
    assert report["steps"] == int(model.optimizer.iterations.numpy()) == 2 * steps_per_epoch
    assert (output / "config.json").exists() and not (output / "backup").exists()


def test_pretrain_command_has_the_training_runtime_flags():
    import argparse

    from kerabert.cli import build_parser
    from kerabert.cli.options import PRETRAIN_FLAGS, fit_keywords

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    args = action.choices["pretrain"].parse_args(
        ["--corpus", "c", "--output", "o", "--strategy", "mirrored", "--precision",
         "mixed_bfloat16", "--resume", "--deterministic", "--seed", "3"])
    keywords = fit_keywords(args, PRETRAIN_FLAGS)
    assert {k: keywords[k] for k in ("strategy", "precision", "resume", "deterministic",
                                     "seed", "epochs", "learning_rate")} == {
        "strategy": "mirrored", "precision": "mixed_bfloat16", "resume": True,
        "deterministic": True, "seed": 3, "epochs": 1, "learning_rate": 5e-5}
    import inspect

    assert set(keywords) <= set(inspect.signature(pretrain).parameters)
