"""The tagging and masked-LM token accuracies: distinct registered names, old saves load.

Both classes are called `MaskedTokenAccuracy`; they used to register under the same
Keras name (`kerabert>MaskedTokenAccuracy`), so whichever module was imported last
won when a saved model was loaded. Each now has its own name, and a model saved under
the old shared name resolves it by the metric's module.
"""

from __future__ import annotations

import json
import sys
import zipfile

import keras
import pytest

from kerabert.heads import masked_lm, registry, tagging
from kerabert.task import Task, load_model
from kerabert.testing import tiny_backbone, tiny_tokenizer

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow


def _registered_name(cls):
    return keras.saving.get_registered_name(cls)


def test_the_two_metrics_have_distinct_registered_names():
    names = {_registered_name(tagging.MaskedTokenAccuracy),
             _registered_name(masked_lm.MaskedTokenAccuracy)}
    assert names == {"kerabert>TaggedTokenAccuracy", "kerabert>MaskedLMTokenAccuracy"}
    for cls in (tagging.MaskedTokenAccuracy, masked_lm.MaskedTokenAccuracy):
        assert keras.saving.get_registered_object(_registered_name(cls)) is cls


def _model(head):
    from kerabert.training import compile_task

    keras.utils.set_random_seed(0)
    tokenizer = tiny_tokenizer(["john smith lives in paris"])
    model = Task(tiny_backbone(tokenizer.vocabulary_size, 64), head, tokenizer, 32)
    return compile_task(model, optimizer=keras.optimizers.SGD(learning_rate=0.01))


def _metric_classes(model):
    """`(module, class name)` of every metric in the model's compile config."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("class_name") == "MaskedTokenAccuracy":
                found.append((value.get("module"), value.get("registered_name")))
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(model.get_compile_config())
    return found


def _rename_in_saved_file(path, old_names):
    """Rewrite a `.keras` file as an older kerabert wrote it (the shared metric name)."""
    with zipfile.ZipFile(path) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    config = entries["config.json"].decode("utf-8")
    for name in old_names:
        config = config.replace(f'"{name}"', '"kerabert>MaskedTokenAccuracy"')
    entries["config.json"] = config.encode("utf-8")
    with zipfile.ZipFile(path, "w") as target:
        for name, data in entries.items():
            target.writestr(name, data)
    assert json.loads(config)  # still valid JSON


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "old-shared-name"])
@pytest.mark.parametrize("head,module,name", [
    (lambda: tagging.TokenClassificationHead(labels=["O", "B-PER", "I-PER"]),
     "kerabert.heads.tagging", "kerabert>TaggedTokenAccuracy"),
    (lambda: masked_lm.MaskedLMHead(), "kerabert.heads.masked_lm",
     "kerabert>MaskedLMTokenAccuracy"),
], ids=["ner", "masked-lm"])
def test_saved_model_reloads_with_its_own_metric_class(tmp_path, head, module, name, legacy):
    model = _model(head())
    if module.endswith("masked_lm"):
        model.head.preprocessor(model.tokenizer, 32)  # learns the vocabulary, as training
    assert _metric_classes(model) == [(module, name)]
    path = tmp_path / "model.keras"
    model.save(path)
    if legacy:
        _rename_in_saved_file(path, [name])
        assert "kerabert>MaskedTokenAccuracy" in zipfile.ZipFile(path).read(
            "config.json").decode()
    reloaded = load_model(path)
    # Re-serialized from the metric objects the reload built: the right class per head.
    assert _metric_classes(reloaded) == [(module, name)]


def test_ner_head_loads_without_seqeval(monkeypatch):
    """seqeval is the optional `ner` extra: without it the head still loads and trains;
    only entity scoring asks for it."""
    monkeypatch.setitem(sys.modules, "seqeval", None)
    monkeypatch.setitem(sys.modules, "seqeval.metrics", None)
    for module in ("kerabert.heads.tagging", "kerabert.metrics.entities"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    custom_objects = keras.saving.get_custom_objects()
    saved = dict(custom_objects)  # the re-import registers new class objects
    registry.clear_cache()
    try:
        with _no_warnings():
            head_class = registry.get("ner")
        assert head_class.__module__ == "kerabert.heads.tagging"
        assert "ner" in registry.names()
        head = head_class(labels=["O", "B-PER", "I-PER"])
        with pytest.raises(ImportError, match=r"kerabert\[ner\]"):
            head.score([{"tags": ["O"]}], {"text": [["a"]], "tags": [["O"]]})
    finally:
        custom_objects.clear()
        custom_objects.update(saved)
        registry.clear_cache()


class _no_warnings:
    """No 'skipping head' warning from the registry."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self.caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        skipped = [str(w.message) for w in self.caught if "skipping" in str(w.message)]
        assert not skipped, skipped
        return False
