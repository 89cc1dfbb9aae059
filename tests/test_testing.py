"""kerabert.testing: the conformance kit passes good heads and names each defect of broken ones."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerabert.heads import Head
from kerabert.heads.classification import TextClassificationHead
from kerabert.testing import (
    STEPS,
    ConformanceError,
    check_head,
    tiny_backbone,
    tiny_tokenizer,
)

EXAMPLES = {
    "text": ["a good film", "a dull plot", "great fun and brilliant", "boring and awful",
             "the actors are fine", "not very funny", "a brilliant story", "bad music"],
    "label": ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"],
}


def failed(report):
    return {s.step: s.detail for s in report.steps if s.status == "failed"}


@pytest.mark.slow
def test_a_good_head_conforms(tmp_path):
    # export=False: the guide's example head below goes through the export step.
    report = check_head(TextClassificationHead, EXAMPLES, workdir=tmp_path, export=False)
    statuses = {s.step: s.status for s in report.steps}
    assert [s.step for s in report.steps] == list(STEPS)
    assert report.ok and not failed(report)
    must_pass = set(STEPS) - {"export", "search-space"}  # these two depend on extras
    assert all(statuses[step] == "passed" for step in must_pass), statuses
    assert (tmp_path / "model.keras").is_file()  # save-reload really saved
    assert "loss" in report.result("train").detail


def test_an_instance_and_its_options_are_checked_too():
    head = TextClassificationHead(labels=["neg", "pos"], dropout=0.0)
    report = check_head(head, EXAMPLES, steps=["config", "preprocess"])
    assert report.ok
    assert [s.step for s in report.steps] == ["contract", "config", "adapt", "preprocess"]


def test_failures_raise_with_every_failed_step_in_the_message():
    class WrongVersion(TextClassificationHead):
        contract_version = 3

    with pytest.raises(ConformanceError) as error:
        check_head(WrongVersion, EXAMPLES, steps=["predict"])
    message = str(error.value)
    assert "[contract] failed" in message and "contract version 3" in message
    # Steps after a failure are skipped, saying why, not run on a broken head.
    assert error.value.report.result("build").status == "skipped"
    assert "needs step(s) contract" in error.value.report.result("adapt").detail


def test_constructor_argument_missing_from_config():
    class Forgetful(TextClassificationHead):
        def __init__(self, labels=None, temperature=2.0):
            super().__init__(labels=labels)
            self.temperature = temperature

    report = check_head(Forgetful, EXAMPLES, steps=["config"], raise_on_failure=False)
    assert "constructor argument(s) ['temperature'] missing from get_config()" in (
        failed(report)["config"]
    )


def test_config_that_is_not_json():
    class NumpyConfig(TextClassificationHead):
        def get_config(self):
            return {**super().get_config(), "dropout": np.float32(self.dropout),
                    "labels": set(self.labels or [])}

    report = check_head(NumpyConfig, EXAMPLES, steps=["config"], raise_on_failure=False)
    assert "is not JSON-serializable" in failed(report)["config"]


def test_learned_state_missing_from_config_after_adapt():
    class LosesLabels(TextClassificationHead):
        def get_config(self):
            return {**super().get_config(), "labels": None}

    report = check_head(LosesLabels, EXAMPLES, steps=["adapt"], raise_on_failure=False)
    detail = failed(report)["adapt"]
    assert "attribute(s) ['labels'] after adapt are not restored" in detail


def test_preprocessor_with_wrong_inputs():
    class FloatIds(TextClassificationHead):
        def preprocessor(self, tokenizer, sequence_length):
            inner = super().preprocessor(tokenizer, sequence_length)

            def call(batch):
                features, targets, weights = inner(batch)
                features = {**features, "token_ids": tf.cast(features["token_ids"], tf.float32)}
                return features, targets, weights

            return call

    report = check_head(FloatIds, EXAMPLES, steps=["preprocess"], raise_on_failure=False)
    assert "features['token_ids'] is float32, BERT inputs are int32" in failed(report)["preprocess"]


def test_preprocessor_returning_a_pair_instead_of_a_triple():
    class Pair(TextClassificationHead):
        def preprocessor(self, tokenizer, sequence_length):
            inner = super().preprocessor(tokenizer, sequence_length)
            return lambda batch: inner(batch)[:2]

    report = check_head(Pair, EXAMPLES, steps=["preprocess"], raise_on_failure=False)
    assert "(features, targets, sample_weights)" in failed(report)["preprocess"]
    assert "length 2" in failed(report)["preprocess"]


def test_decode_returning_the_wrong_number_of_predictions():
    class OnePerBatch(TextClassificationHead):
        def decode(self, outputs, features, examples):
            return super().decode(outputs, features, examples)[:1]

    report = check_head(OnePerBatch, EXAMPLES, steps=["predict"], raise_on_failure=False)
    assert "8 examples gave 2 predictions" in failed(report)["predict"]


def test_decode_returning_numpy_values():
    class NumpyScores(TextClassificationHead):
        def decode(self, outputs, features, examples):
            return [{"label": p["label"], "score": np.float32(p["score"])}
                    for p in super().decode(outputs, features, examples)]

    report = check_head(NumpyScores, EXAMPLES, steps=["predict"], raise_on_failure=False)
    detail = failed(report)["predict"]
    assert "prediction 0 is not JSON-serializable" in detail and "float32" in detail


def test_an_error_in_the_heads_code_is_located():
    class Crashes(TextClassificationHead):
        def score(self, predictions, examples):
            return {"accuracy": predictions[0]["no-such-key"]}

    report = check_head(Crashes, EXAMPLES, steps=["score"], raise_on_failure=False)
    detail = failed(report)["score"]
    assert detail.startswith("KeyError: 'no-such-key'")
    assert "(at test_testing.py:" in detail and "in score)" in detail


@pytest.mark.slow
def test_state_outside_keras_layers_is_lost_on_reload():
    class RandomProjection(TextClassificationHead):
        """Logits through a fixed random matrix made with numpy: not a saved weight."""

        name = "random-projection"

        def build_outputs(self, backbone_outputs, inputs):
            logits = super().build_outputs(backbone_outputs, inputs)
            matrix = np.random.default_rng().normal(size=(self.num_labels, self.num_labels))
            return keras.layers.Lambda(
                lambda x: keras.ops.matmul(x, keras.ops.convert_to_tensor(matrix, "float32")),
                name="projection",
            )(logits)

    report = check_head(RandomProjection, EXAMPLES, steps=["save-reload"],
                        raise_on_failure=False)
    detail = failed(report)["save-reload"]
    assert "differs after save and reload" in detail and "not saved" in detail


def test_a_name_taken_by_another_head_is_caught_before_saving():
    class Impostor(TextClassificationHead):
        name = "sentiment"  # kerabert's own SentimentHead has this name

    report = check_head(Impostor, EXAMPLES, steps=["save-reload"], raise_on_failure=False)
    detail = failed(report)["save-reload"]
    assert "resolves head 'sentiment' to kerabert.heads.classification.SentimentHead" in detail


def test_nan_loss_fails_training():
    class NanLoss(TextClassificationHead):
        def loss(self):
            return lambda y_true, y_pred: keras.ops.mean(y_pred) * float("nan")

    report = check_head(NanLoss, EXAMPLES, steps=["train"], raise_on_failure=False)
    assert failed(report)["train"] == "the training loss is nan"


def test_serving_outputs_missing_or_without_a_batch_dimension():
    class NoServing(TextClassificationHead):
        serving_outputs = Head.serving_outputs  # the contract's default: not implemented

    class Scalar(TextClassificationHead):
        def serving_outputs(self, outputs, features):
            return {"mean_score": tf.reduce_mean(tf.nn.softmax(outputs))}

    report = check_head(NoServing, EXAMPLES, steps=["serving"], raise_on_failure=False)
    # Contract 2 requires serving_outputs: the contract step refuses the class already.
    assert "does not define serving_outputs itself" in failed(report)["contract"]
    assert report.result("serving").status == "skipped"
    report = check_head(Scalar, EXAMPLES, steps=["serving"], raise_on_failure=False)
    assert "serving_outputs['mean_score'] has shape ()" in failed(report)["serving"]


def test_unknown_step_and_missing_fields_are_reported():
    with pytest.raises(ValueError, match="unknown step"):
        check_head(TextClassificationHead, EXAMPLES, steps=["fly"])
    report = check_head(TextClassificationHead, {"sentence": EXAMPLES["text"]},
                        steps=["contract"], raise_on_failure=False)
    assert "the examples lack field(s) ['text', 'label']" in failed(report)["contract"]


def test_tiny_tokenizer_and_backbone():
    tokenizer = tiny_tokenizer(["Zebras graze"])
    ids = tokenizer(["zebras graze"]).to_list()[0]
    assert tokenizer.unknown_id not in ids  # the examples' words are in the vocabulary
    backbone = tiny_backbone(tokenizer.vocabulary_size)
    assert backbone.num_layers == 2 and backbone.hidden_dim == 32


@pytest.mark.slow
def test_the_guides_example_head_conforms(tmp_path):
    """docs/writing-a-head.md's minimal head, run exactly as printed."""
    import re
    import sys
    import types
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "writing-a-head.md").read_text(
        encoding="utf-8")
    block = re.search(r"<!-- example-head:start -->\s*```python\n(.*?)```\s*"
                      r"<!-- example-head:end -->", guide, re.S).group(1)
    module = types.ModuleType("guide_example_head")
    module.__file__ = str(tmp_path / "guide_example_head.py")
    (tmp_path / "guide_example_head.py").write_text(block, encoding="utf-8")
    sys.modules[module.__name__] = module
    try:
        exec(compile(block, module.__file__, "exec"), module.__dict__)
        report = check_head(module.MeanPoolClassifierHead, EXAMPLES, workdir=tmp_path)
    finally:
        del sys.modules[module.__name__]
    assert report.ok
    assert report.result("save-reload").status == "passed"
    assert "registered in code for this check" in report.result("save-reload").detail
    assert report.result("export").status == "passed"  # kerabert.export is part of kerabert


def test_a_decode_that_disagrees_with_serving_outputs_fails_the_decode_step():
    class WrongLabel(TextClassificationHead):
        def decode(self, outputs, features, examples):
            names = self.output_labels
            return [dict(p, label=names[len(names) - 1 - names.index(p["label"])])
                    for p in super().decode(outputs, features, examples)]

    report = check_head(WrongLabel, EXAMPLES, steps=["decode"], raise_on_failure=False)
    detail = failed(report)["decode"]
    assert "example 0: decode and serving_outputs disagree on 'label'" in detail


def test_the_decode_step_compares_a_hand_written_decode_key_by_key():
    class Hand(TextClassificationHead):
        def decode(self, outputs, features, examples):  # numpy, float64
            probabilities = self.probabilities(outputs)
            return [{"label": self.output_labels[int(row.argmax())], "score": float(row.max())}
                    for row in probabilities]

    report = check_head(Hand, EXAMPLES, steps=["decode"], raise_on_failure=False)
    assert report.result("decode").status == "passed", str(report)
    assert "2 key(s) (label, score)" in report.result("decode").detail


def test_a_contract_1_head_still_builds_predicts_and_reloads():
    class Version1(TextClassificationHead):
        name = "fake-version-1"
        contract_version = 1

        def build_outputs(self, backbone_outputs, inputs):  # no backbone argument in v1
            return super().build_outputs(backbone_outputs, inputs)

        def decode(self, outputs, features, examples):
            return [{"label": self.output_labels[int(np.argmax(row))]} for row in outputs]

    report = check_head(Version1, EXAMPLES, steps=["decode", "save-reload"],
                        raise_on_failure=False)
    assert report.result("save-reload").status == "passed", str(report)
    # Its base class shapes serving outputs into predictions (format_predictions), so
    # the hand-written decode is compared with them on the key they share.
    assert report.result("decode").status == "passed", str(report)
    assert "1 key(s) (label)" in report.result("decode").detail


def test_a_contract_1_head_without_format_predictions_is_not_compared():
    from kerabert.heads.base import Head

    class Version1(TextClassificationHead):
        name = "fake-version-1-plain"
        contract_version = 1
        format_predictions = Head.format_predictions

        def decode(self, outputs, features, examples):
            return [{"label": self.output_labels[int(np.argmax(row))]} for row in outputs]

    report = check_head(Version1, EXAMPLES, steps=["decode"], raise_on_failure=False)
    assert report.result("decode").status == "skipped", str(report)
    assert "contract-1 head" in report.result("decode").detail
