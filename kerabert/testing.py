"""Conformance checks for head authors: does a head work everywhere kerabert uses it?

`check_head` runs a head through what `kerabert train`, `predict`, `evaluate`,
`export` and `tune` do, on a tiny BERT (2 layers, hidden size 32) with a small
vocabulary built in, in seconds on a CPU:

| step           | what is checked                                                        |
|----------------|------------------------------------------------------------------------|
| `contract`     | the class has the contract's methods and this kerabert's contract version; `name`, `fields`, `target_fields` |
| `config`       | `get_config()` is JSON, holds every constructor argument, and `from_config` rebuilds the same config |
| `adapt`        | `adapt(examples)` runs; what it learned is in `get_config()`; `prepare_examples` returns `(examples, rows)` |
| `preprocess`   | the preprocessor returns `(features, targets, weights)` with BERT's inputs `[n, sequence_length]`, int32, valid ids and masks, `extra_inputs`; no targets without target fields |
| `dataset`      | the tf.data pipeline (graph mode, length bucketing) yields a batch     |
| `build`        | `kerabert.Task(backbone, head, ...)` builds and compiles with the head's loss and metrics |
| `train`        | training steps give a finite loss and change the weights               |
| `predict`      | `predict_examples` gives one JSON-serializable dict per example        |
| `score`        | `score(predictions, examples)` gives a JSON-serializable dict          |
| `save-reload`  | `model.save` + `kerabert.load_model` give identical outputs and predictions |
| `serving`      | `serving_outputs` runs in a `tf.function`, batch first                 |
| `decode`       | a hand-written `decode` agrees with the decoding derived from `serving_outputs` (`format_predictions`) on the same outputs: labels, tags and spans equal, scores within 1e-4 |
| `export`       | `kerabert.export` writes a SavedModel taking raw text that matches the Keras model (skipped when this kerabert has no `kerabert.export`) |
| `search-space` | `search_space(hp)` gives keras-tuner hyperparameters (skipped without keras-tuner) |

Each failure names its step and what went wrong (with the line of the head's own
code that raised, when it did); steps that need a failed step are skipped.

Example (in a plugin's tests):
```python
from kerabert.testing import check_head
from my_plugin import MyHead

def test_my_head_conforms():
    check_head(MyHead, {"text": ["a good film", "a dull plot"] * 4,
                        "label": ["pos", "neg"] * 4})
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import re
import tempfile
import time
import traceback

import numpy as np

STEPS = (
    "contract", "config", "adapt", "preprocess", "dataset", "build", "train", "predict",
    "score", "save-reload", "serving", "decode", "export", "search-space",
)
# Which earlier steps each step needs.
NEEDS = {
    "config": ("contract",),
    "adapt": ("contract",),
    "preprocess": ("adapt",),
    "dataset": ("preprocess",),
    "build": ("adapt",),
    "train": ("build", "dataset"),
    "predict": ("build", "preprocess"),
    "score": ("predict",),
    "save-reload": ("predict", "config"),
    "serving": ("build", "preprocess"),
    "decode": ("predict", "serving"),
    "export": ("serving",),
    "search-space": ("contract",),
}

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A small general vocabulary; `tiny_tokenizer` adds the words of the examples.
BASE_WORDS = (
    "a an the is was are be it this that these and or but not no of in on at to for with by "
    "from as what who where when why how which i you he she we they good bad new old first "
    "last one two three film movie book game team city country company year day time people "
    ". , ! ? ' \" - ( ) : ; 0 1 2 3 4 5 6 7 8 9"
).split()
SUFFIXES = ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##ion", "##al"]
# The fixed vocabulary of kerabert's own unit tests (`tests/conftest.py` uses it): word
# ids that tests may rely on, so it only ever grows at the end.
TINY_WORDS = (
    "a an the film movie story plot actor actors good bad great awful fine dull brilliant "
    "boring fun funny not very is was are it this that and but of in on to with by "
    "john smith paris london berlin google apple monday what where who when how why "
    "city river company team game music book song . , ! ? ' - ( )"
).split()
TINY_VOCABULARY = SPECIAL_TOKENS + TINY_WORDS + ["##s", "##ed", "##ing", "##ly", "##er"]
MAX_VOCABULARY = 4000
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class ConformanceError(AssertionError):
    """Raised by `check_head` when a step fails; `report` holds every step's result."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


@dataclasses.dataclass
class StepResult:
    """The outcome of one step: `status` is `"passed"`, `"failed"` or `"skipped"`."""

    step: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclasses.dataclass
class ConformanceReport:
    """Every step's result for one head."""

    head: str
    steps: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.failures

    @property
    def failures(self):
        return [s for s in self.steps if s.status == "failed"]

    def result(self, step):
        """The `StepResult` of `step` (e.g. `"save-reload"`)."""
        return next(s for s in self.steps if s.step == step)

    def __str__(self):
        failed = len(self.failures)
        lines = [
            f"head {self.head}: "
            + (f"{failed} step(s) failed" if failed else "conforms")
            + f" ({', '.join(f'{s.step} {s.status}' for s in self.steps)})"
        ]
        for s in self.steps:
            if s.status == "failed" or s.detail:
                lines.append(f"  [{s.step}] {s.status}: {s.detail}")
        return "\n".join(lines)


class _StepFailure(Exception):
    """A check that did not hold; the message is the detail."""


def _fail(message):
    raise _StepFailure(message)


def tiny_tokenizer(texts=(), vocabulary=None):
    """A `BertTokenizer` over a small built-in vocabulary plus the words of `texts`.

    Args:
        texts: strings whose (lower-cased) words join the vocabulary, so test
            examples tokenize to real ids rather than `[UNK]`.
        vocabulary: use exactly this vocabulary instead (e.g. `TINY_VOCABULARY`).
    """
    from kerabert.tokenizer import BertTokenizer

    if vocabulary is not None:
        return BertTokenizer(list(vocabulary), lowercase=True)
    words = set()
    for text in texts:
        words.update(_WORD.findall(str(text).lower()))
    extra = sorted(words - set(BASE_WORDS) - set(SPECIAL_TOKENS))
    vocabulary = SPECIAL_TOKENS + BASE_WORDS + SUFFIXES
    vocabulary += extra[: MAX_VOCABULARY - len(vocabulary)]
    return BertTokenizer(vocabulary, lowercase=True)


def tiny_backbone(vocabulary_size=len(TINY_VOCABULARY), max_sequence_length=128, **options):
    """A 2-layer, hidden-32 BERT backbone: trains in well under a second per step.

    Args:
        vocabulary_size: the token embedding's rows (default: `TINY_VOCABULARY`'s).
        max_sequence_length: the position embedding's rows.
        **options: other `kerabert.backbone.BertBackbone` arguments (`dropout`,
            `hidden_activation`, ...).
    """
    from kerabert.backbone import BertBackbone

    return BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=max_sequence_length,
        **options,
    )


def _strings(examples):
    for values in examples.values():
        for value in values:
            if isinstance(value, str):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (v for v in value if isinstance(v, str))


def check_head(head, examples, *, options=None, steps=None, sequence_length=32, batch_size=4,
               train_steps=1, export=True, workdir=None, seed=0, raise_on_failure=True,
               backbone=None):
    """Run a head through train / predict / evaluate / save / export on a tiny BERT.

    Args:
        head: a `kerabert.heads.Head` subclass or instance.
        examples: training examples, `{field: list}` with the head's `fields` and
            `target_fields` (a few rows suffice; 8 is plenty), or the path of a file
            the head's `read` accepts.
        options: constructor options when `head` is a class.
        steps: run only these steps (names from `STEPS`) and the steps they need;
            default: all of them.
        sequence_length: the packed length (small keeps the check fast).
        batch_size: the batch size of training and prediction.
        train_steps: training steps to run.
        export: export formats to check with `kerabert.export.export`: `True` (a
            SavedModel, whose raw-text signature must match `serving_outputs`), a
            format or a tuple of formats (`"savedmodel"`, `"tflite"`, `"onnx"`), or
            `False`.
        workdir: where to save the model and export (default: a temporary folder).
        seed: the Keras random seed (set globally).
        raise_on_failure: raise `ConformanceError` if a step fails.
        backbone: run on this backbone instead of the tiny BERT: a `load_backbone` spec
            (e.g. a tiny checkpoint folder of another BERT-family model) or a
            `(backbone, tokenizer)` pair.

    Returns:
        A `ConformanceReport`.

    Raises:
        ConformanceError: a step failed (with `raise_on_failure`); the message lists
            each step and what went wrong.
    """
    import keras

    keras.utils.set_random_seed(seed)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="kerabert-check-"))
        checker = _Checker(head, examples, options or {}, _with_needs(steps), sequence_length,
                           batch_size, train_steps, export, workdir, backbone)
        report = checker.run()
    if raise_on_failure and not report.ok:
        raise ConformanceError(report)
    return report


def _with_needs(steps):
    """`steps` and, recursively, the steps they need (all steps when None)."""
    if steps is None:
        return set(STEPS)
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; steps are {', '.join(STEPS)}")
    selected, pending = set(), list(steps)
    while pending:
        step = pending.pop()
        if step not in selected:
            selected.add(step)
            pending.extend(NEEDS.get(step, ()))
    return selected


class _Checker:
    def __init__(self, head, examples, options, selected, sequence_length, batch_size,
                 train_steps, export, workdir, backbone=None):
        self.backbone_arg = backbone
        self.head_arg = head
        self.head = head if not inspect.isclass(head) else None
        self.head_class = head if inspect.isclass(head) else type(head)
        self.raw_examples = examples
        self.options = options
        self.selected = selected
        self.sequence_length = int(sequence_length)
        self.batch_size = int(batch_size)
        self.train_steps = int(train_steps)
        self.export = export
        self.workdir = str(workdir)
        self.report = ConformanceReport(getattr(self.head_class, "__name__", repr(head)))
        self.notes = {}

    # -- driver ----------------------------------------------------------------------------
    def run(self):
        passed = set()
        for step in STEPS:
            if step not in self.selected:
                continue
            missing = [need for need in NEEDS.get(step, ()) if need not in passed]
            if missing:
                self.report.steps.append(
                    StepResult(step, "skipped", f"needs step(s) {', '.join(missing)}")
                )
                continue
            method = getattr(self, "step_" + step.replace("-", "_"))
            started = time.perf_counter()
            try:
                skipped = method()
            except _StepFailure as e:
                status, detail = "failed", str(e)
            except Exception as e:  # any error of the head's code is a finding
                status, detail = "failed", self._describe(e)
            else:
                status, detail = ("skipped", skipped) if skipped else (
                    "passed", self.notes.get(step, ""))
            seconds = round(time.perf_counter() - started, 2)
            self.report.steps.append(StepResult(step, status, detail, seconds))
            if status == "passed":
                passed.add(step)
        return self.report

    def _describe(self, error):
        """`Type: message`, plus the innermost line of the head's own module that raised."""
        text = f"{type(error).__name__}: {error}".strip()
        if len(text) > 600:
            text = text[:600] + " ..."
        module = inspect.getmodule(self.head_class)
        head_file = getattr(module, "__file__", None)
        if head_file:
            frames = [f for f in traceback.extract_tb(error.__traceback__)
                      if os.path.abspath(f.filename) == os.path.abspath(head_file)]
            if frames:
                frame = frames[-1]
                text += f" (at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
        return text

    def _note(self, step, text):
        self.notes[step] = (self.notes.get(step, "") + "; " + text).lstrip("; ")

    # -- steps -----------------------------------------------------------------------------
    def step_contract(self):
        from kerabert.heads.base import CONTRACT_VERSION, Head
        from kerabert.heads.registry import check_contract

        check_contract(self.head_class, where=f"{self.head_class.__module__}."
                       f"{self.head_class.__qualname__}")
        if not _declares_contract_version(self.head_class, Head):
            self._note("contract", f"the class does not set contract_version itself (it "
                       f"inherits {CONTRACT_VERSION}); declare the version it was written for")
        if self.head is None:
            try:
                self.head = self.head_class(**self.options)
            except Exception as e:
                _fail(f"{self.head_class.__name__}(**{self.options!r}) failed: "
                      f"{self._describe(e)}")
        self.report.head = f"{self.head.name!r} ({self.head_class.__name__})"
        if not isinstance(self.head.name, str) or not self.head.name:
            _fail("name must be a non-empty string (the entry-point name users select)")
        fields, target_fields = self.head.fields, self.head.target_fields
        if not isinstance(fields, tuple) or not fields or not all(
            isinstance(f, str) for f in fields
        ):
            _fail(f"fields must be a non-empty tuple of field names, got {fields!r}")
        if not isinstance(target_fields, tuple) or not all(
            isinstance(f, str) for f in target_fields
        ):
            _fail(f"target_fields must be a tuple of field names, got {target_fields!r}")
        self.examples = self._load_examples()
        missing = [f for f in fields + target_fields if f not in self.examples]
        if missing:
            _fail(f"the examples lack field(s) {missing} that the head declares "
                  f"(fields={fields}, target_fields={target_fields}); "
                  f"examples have {sorted(self.examples)}")
        sizes = {f: len(self.examples[f]) for f in fields + target_fields}
        if len(set(sizes.values())) != 1:
            _fail(f"example columns differ in length: {sizes}")
        self.num_examples = next(iter(sizes.values()))
        if self.num_examples == 0:
            _fail("no examples")
        self.inputs_only = {f: list(self.examples[f]) for f in fields}

    def _load_examples(self):
        examples = self.raw_examples
        if isinstance(examples, (str, os.PathLike)):
            try:
                examples = self.head.read(os.fspath(examples))
            except NotImplementedError:
                raise
            except Exception as e:
                _fail(f"read({os.fspath(self.raw_examples)!r}) failed: {self._describe(e)}")
        if not isinstance(examples, dict):
            _fail(f"examples must be a dict of columns or a file path, got "
                  f"{type(examples).__name__}")
        return examples

    def step_config(self):
        self._check_config(self.head, "before adapt")

    def _check_config(self, head, when):
        config = head.get_config()
        if not isinstance(config, dict):
            _fail(f"get_config() {when} returned {type(config).__name__}, not a dict")
        try:
            json.dumps(config)
        except (TypeError, ValueError) as e:
            _fail(f"get_config() {when} is not JSON-serializable ({e}); the config is "
                  f"stored in the saved model's JSON")
        parameters = inspect.signature(type(head).__init__).parameters
        arguments = [
            name for name, p in parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        missing = [name for name in arguments if name not in config]
        if missing:
            _fail(f"constructor argument(s) {missing} missing from get_config() {when}: "
                  f"a saved model would lose them")
        try:
            rebuilt = type(head).from_config(json.loads(json.dumps(config)))
        except Exception as e:
            _fail(f"from_config(get_config()) {when} failed: {self._describe(e)}")
        again = rebuilt.get_config()
        if json.loads(json.dumps(again)) != json.loads(json.dumps(config)):
            changed = sorted(k for k in set(config) | set(again) if config.get(k) != again.get(k))
            _fail(f"from_config(get_config()) {when} gives another config: key(s) {changed} "
                  f"differ ({ {k: config.get(k) for k in changed} } -> "
                  f"{ {k: again.get(k) for k in changed} })")
        # State the head holds (e.g. labels learned by adapt) must survive the config.
        lost = {
            name: value for name, value in vars(head).items()
            if not name.startswith("_") and _plain(value)
            and _canonical(getattr(rebuilt, name, _MISSING)) != _canonical(value)
        }
        if lost:
            _fail(f"attribute(s) {sorted(lost)} {when} are not restored by "
                  f"from_config(get_config()) (rebuilt: "
                  f"{ {k: getattr(rebuilt, k, '<missing>') for k in sorted(lost)} }, "
                  f"original: {lost}): put learned state in get_config()")

    def step_adapt(self):
        self.head.adapt(self.examples)
        self._check_config(self.head, "after adapt")
        if self.backbone_arg is not None:
            from kerabert.backbone import resolve_backbone

            self.backbone, self.tokenizer = resolve_backbone(self.backbone_arg)
        else:
            self.tokenizer = tiny_tokenizer(_strings(self.examples))
            self.backbone = tiny_backbone(self.tokenizer.vocabulary_size,
                                          max(self.sequence_length, 64))
        # kerabert.train calls it once the tokenizer is known.
        result = self.head.prepare_examples(self.examples, self.tokenizer, self.sequence_length)
        if not (isinstance(result, tuple) and len(result) == 2
                and isinstance(result[0], dict) and isinstance(result[1], int)):
            _fail(f"prepare_examples must return (examples, rows), got {result!r:.200}")
        self.examples = result[0]

    def _raw_batch(self, columns):
        from kerabert.data import pipeline

        n = min(self.batch_size, self.num_examples)
        subset = {f: list(v)[:n] for f, v in columns.items()}
        dataset = pipeline.examples_to_dataset(subset).batch(n)
        return next(iter(dataset)), n

    def step_preprocess(self):
        import tensorflow as tf

        preprocessor = self.head.preprocessor(self.tokenizer, self.sequence_length)
        if not callable(preprocessor):
            _fail(f"preprocessor() returned {type(preprocessor).__name__}, not a callable layer")
        fields = self.head.fields + self.head.target_fields
        batch, n = self._raw_batch({f: self.examples[f] for f in fields})
        result = preprocessor(batch)
        if not isinstance(result, tuple) or len(result) != 3:
            _fail("the preprocessor must return (features, targets, sample_weights), got "
                  f"{type(result).__name__}"
                  + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
        features, targets, _ = result
        if not isinstance(features, dict):
            _fail(f"features must be a dict of tensors, got {type(features).__name__}")
        rows = None
        for name in ("token_ids", "segment_ids", "padding_mask"):
            if name not in features:
                _fail(f"features lack {name!r} (got {sorted(features)})")
            tensor = features[name]
            if tensor.dtype != tf.int32:
                _fail(f"features[{name!r}] is {tensor.dtype.name}, BERT inputs are int32")
            if tensor.shape.rank != 2 or tensor.shape[1] != self.sequence_length:
                _fail(f"features[{name!r}] has shape {tensor.shape}, expected "
                      f"[n, sequence_length={self.sequence_length}]")
            rows = tensor.shape[0] if rows is None else rows
            if tensor.shape[0] != rows:
                _fail(f"features[{name!r}] has {tensor.shape[0]} rows, token_ids has {rows}")
        ids = features["token_ids"].numpy()
        if ids.min() < 0 or ids.max() >= self.tokenizer.vocabulary_size:
            _fail(f"token_ids outside [0, {self.tokenizer.vocabulary_size}): "
                  f"min {ids.min()}, max {ids.max()}")
        mask = features["padding_mask"].numpy()
        if not set(np.unique(mask)) <= {0, 1}:
            _fail(f"padding_mask holds values other than 0 and 1: {sorted(np.unique(mask))}")
        if (mask.sum(axis=1) == 0).any():
            _fail("a row of padding_mask is all zero (no [CLS])")
        for name in self.head.extra_inputs():
            if name not in features:
                _fail(f"extra_inputs() declares {name!r} but the preprocessor's features "
                      f"lack it (got {sorted(features)})")
        if self.head.target_fields and targets is None:
            _fail(f"batch has target field(s) {self.head.target_fields} but targets is None")
        if targets is not None:
            for tensor in tf.nest.flatten(targets):
                if tensor.shape.rank is not None and tensor.shape.rank >= 1 and (
                    tensor.shape[0] != rows
                ):
                    _fail(f"targets have {tensor.shape[0]} rows, features have {rows}")
        inputs_batch, _ = self._raw_batch(self.inputs_only)
        _, no_targets, _ = preprocessor(inputs_batch)
        if no_targets is not None:
            _fail("with only the input fields (no target fields, as in prediction) the "
                  "preprocessor must return targets=None")
        self.rows_per_batch = rows
        if rows != n:
            self._note("preprocess", f"{n} raw examples gave {rows} feature rows")

    def step_dataset(self):
        from kerabert.data import pipeline

        columns = {f: self.examples[f] for f in self.head.fields + self.head.target_fields}
        self.train_dataset = pipeline.make_dataset(
            self.head, self.tokenizer, columns, sequence_length=self.sequence_length,
            batch_size=self.batch_size, training=True, repeat=True, seed=0,
            input_names=tuple(self._input_names()),
        )
        element = next(iter(self.train_dataset))
        if len(element) < 2:
            _fail("the training dataset has no targets")

    def _input_names(self):
        from kerabert.data import pipeline

        return list(pipeline.BACKBONE_INPUTS) + list(self.head.extra_inputs())

    def step_build(self):
        from kerabert.task import Task
        from kerabert.training import compile_task

        import keras

        self.model = Task(self.backbone, self.head, self.tokenizer, self.sequence_length)
        # Plain SGD: the check is about the head's loss and metrics in a graph-mode
        # training step; tracing kerabert's AdamW schedule would cost seconds more.
        compile_task(self.model, optimizer=keras.optimizers.SGD(learning_rate=0.01))

    def step_train(self):
        before = [np.array(v) for v in self.model.trainable_variables]
        history = self.model.fit(self.train_dataset, steps_per_epoch=self.train_steps,
                                 epochs=1, verbose=0,
                                 shuffle=False)  # the dataset shuffles itself
        loss = history.history.get("loss", [float("nan")])[-1]
        if not np.isfinite(loss):
            _fail(f"the training loss is {loss}")
        after = [np.array(v) for v in self.model.trainable_variables]
        if all(np.array_equal(a, b) for a, b in zip(before, after)):
            _fail("no trainable weight changed after training: the loss does not reach them")
        self._note("train", f"loss {loss:.4f} after {self.train_steps} step(s)")

    def step_predict(self):
        self.predictions = self.model.predict_examples(self.inputs_only,
                                                       batch_size=self.batch_size)
        if not isinstance(self.predictions, list) or len(self.predictions) != self.num_examples:
            _fail(f"{self.num_examples} examples gave "
                  f"{len(self.predictions) if isinstance(self.predictions, list) else type(self.predictions).__name__}"
                  " predictions; decode must return one dict per raw example")
        for i, prediction in enumerate(self.predictions):
            if not isinstance(prediction, dict):
                _fail(f"prediction {i} is {type(prediction).__name__}, not a dict")
            try:
                json.dumps(prediction)
            except (TypeError, ValueError) as e:
                _fail(f"prediction {i} is not JSON-serializable ({e}): {prediction!r:.200}; "
                      "use Python floats/ints/strings (kerabert predict prints JSON lines)")
        self.outputs = self._raw_outputs(self.model)

    def _raw_outputs(self, model):
        """The model's numpy outputs on the first batch of examples."""
        import tensorflow as tf

        preprocessor = self.head.preprocessor(self.tokenizer, self.sequence_length)
        batch, _ = self._raw_batch(self.inputs_only)
        features = preprocessor(batch)[0]
        outputs = model.predict_on_batch({k: features[k] for k in self._input_names()})
        return tf.nest.map_structure(np.asarray, outputs)

    def step_score(self):
        scores = self.head.score(self.predictions, self.examples)
        if not isinstance(scores, dict):
            _fail(f"score() returned {type(scores).__name__}, not a dict")
        try:
            json.dumps(scores)
        except (TypeError, ValueError) as e:
            _fail(f"score() is not JSON-serializable ({e}): {scores!r:.200}")
        objective = getattr(self.head, "objective", None)
        if objective and objective not in scores:
            _fail(f"the head's objective {objective!r} (what kerabert tune maximizes) is not "
                  f"among score()'s metrics {sorted(scores)}")
        if not scores and self.head.target_fields:
            self._note("score", "score() returned no metrics: `kerabert evaluate` will show none")

    def step_save_reload(self):
        from kerabert.task import load_model

        path = os.path.join(self.workdir, "model.keras")
        with self._registered():
            self.model.save(path)
            reloaded = load_model(path)
            if type(reloaded.head) is not type(self.head):
                _fail(f"the reloaded model's head is {type(reloaded.head).__name__}, "
                      f"not {type(self.head).__name__}")
            if reloaded.head.get_config() != self.head.get_config():
                _fail(f"the reloaded head's config differs: {reloaded.head.get_config()} "
                      f"vs {self.head.get_config()}")
            again = self._raw_outputs(reloaded)
            import tensorflow as tf

            expected, actual = tf.nest.flatten(self.outputs), tf.nest.flatten(again)
            for i, (a, b) in enumerate(zip(expected, actual)):
                if a.shape != b.shape:
                    _fail(f"output {i}: shape {a.shape} before saving, {b.shape} after reload")
                difference = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                if difference > 1e-5:
                    _fail(f"output {i} differs after save and reload by up to {difference:.3g}: "
                          "some state is not saved (weights created outside Keras layers, or "
                          "learned values missing from get_config)")
            predictions = reloaded.predict_examples(self.inputs_only, batch_size=self.batch_size)
            if len(predictions) != len(self.predictions) or not all(
                _same(a, b) for a, b in zip(predictions, self.predictions)
            ):
                first = next((i for i, (a, b) in enumerate(zip(predictions, self.predictions))
                              if not _same(a, b)), 0)
                _fail(f"decoded predictions differ after reload, first at example {first}: "
                      f"{self.predictions[first]!r:.200} vs {predictions[first]!r:.200}")
        self.saved_path = path

    @contextlib.contextmanager
    def _registered(self):
        """Make `load_model` find this head class by name, as an installed plugin would."""
        from kerabert.heads import registry

        name = self.head.name
        previous = registry._registered.get(name)
        try:
            found = registry.get(name)
        except registry.HeadNotFoundError:
            found = None
            self._note("save-reload", f"no installed distribution declares head {name!r}: "
                       "registered in code for this check (users need the entry point)")
        except registry.HeadConflictError as e:
            _fail(str(e))
        if found is not None and found is not type(self.head):
            _fail(f"the registry resolves head {name!r} to {found.__module__}."
                  f"{found.__qualname__}, not {type(self.head).__module__}."
                  f"{type(self.head).__qualname__}: a saved model would load another head "
                  "(choose a unique name)")
        if found is None:
            registry.register(name, type(self.head), replace=True)
        try:
            yield
        finally:
            if found is None:
                if previous is None:
                    registry.unregister(name)
                else:
                    registry.register(name, previous, replace=True)

    def step_serving(self):
        import tensorflow as tf

        try:  # the exact serving graph of kerabert's exports, when this build has them
            from kerabert.export.serving import make_text_fn
        except ImportError:
            make_text_fn = None
        if make_text_fn is not None:
            serve = tf.function(make_text_fn(self.model)[0])
        else:
            preprocessor = self.head.preprocessor(self.tokenizer, self.sequence_length)
            model, head, names = self.model, self.head, self._input_names()

            @tf.function
            def serve(batch):
                features = preprocessor(batch)[0]
                outputs = model({k: features[k] for k in names}, training=False)
                return head.serving_outputs(outputs, features)

        batch, n = self._raw_batch(self.inputs_only)
        try:
            outputs = serve(batch)
        except NotImplementedError as e:
            _fail(f"serving_outputs is not implemented ({e}): the head cannot be exported")
        if not isinstance(outputs, dict) or not outputs:
            _fail(f"serving_outputs must return a non-empty dict of tensors, got "
                  f"{type(outputs).__name__}")
        for name, tensor in outputs.items():
            if not isinstance(tensor, (tf.Tensor, tf.RaggedTensor)):
                _fail(f"serving_outputs[{name!r}] is {type(tensor).__name__}, not a tensor")
            if tensor.shape.rank == 0 or tensor.shape[0] not in (n, self.rows_per_batch):
                _fail(f"serving_outputs[{name!r}] has shape {tensor.shape}; the first "
                      f"dimension must be the batch ({n} examples"
                      + (f" or {self.rows_per_batch} feature rows"
                         if self.rows_per_batch != n else "") + ")")
        self.serving = {k: np.asarray(v) for k, v in outputs.items()}
        self.serve = serve

    def step_decode(self):
        import tensorflow as tf

        from kerabert.heads.base import Head

        preprocessor = self.head.preprocessor(self.tokenizer, self.sequence_length)
        batch, n = self._raw_batch(self.inputs_only)
        features = preprocessor(batch)[0]
        outputs = self.model.predict_on_batch({k: features[k] for k in self._input_names()})
        outputs = tf.nest.map_structure(np.asarray, outputs)
        features = {k: np.asarray(v) for k, v in features.items()}
        examples = {f: list(self.inputs_only[f])[:n] for f in self.head.fields}
        decoded = self.head.decode(outputs, features, examples)
        if not isinstance(decoded, list) or len(decoded) != n:
            _fail(f"decode gave {len(decoded) if isinstance(decoded, list) else decoded!r:.80} "
                  f"for {n} examples")
        cls = type(self.head)
        if _inherited(cls, "decode", Head):
            self._note("decode", "decode is derived from serving_outputs")
            return None
        if getattr(cls, "contract_version", 2) < 2 and _inherited(
                cls, "format_predictions", Head):
            return ("a contract-1 head with a hand-written decode: not compared with "
                    "serving_outputs (contract 2's format_predictions makes them comparable)")
        derived = Head.decode(self.head, outputs, features, examples)
        if len(derived) != n:
            _fail(f"the decoding derived from serving_outputs gave {len(derived)} "
                  f"predictions for {n} examples")
        for i, (mine, theirs) in enumerate(zip(decoded, derived)):
            common = sorted(set(mine) & set(theirs))
            if not common:
                _fail(f"example {i}: decode gives keys {sorted(mine)}, the decoding derived "
                      f"from serving_outputs {sorted(theirs)}: nothing to compare (override "
                      "format_predictions to give decode's form)")
            for key in common:
                if not _same(mine[key], theirs[key], tolerance=1e-4):
                    _fail(f"example {i}: decode and serving_outputs disagree on {key!r}: "
                          f"{mine[key]!r:.200} (decode) vs {theirs[key]!r:.200} "
                          "(serving_outputs)")
        self._note("decode", f"decode matches serving_outputs on {len(common)} key(s) "
                   f"({', '.join(common)}) of {n} example(s)")

    def step_export(self):
        formats = _export_formats(self.export)
        if not formats:
            return "export=False"
        export = _exporter()
        if export is None:
            return "this kerabert has no kerabert.export.export"
        import tensorflow as tf

        batch, _ = self._raw_batch(self.inputs_only)
        if any(isinstance(t, tf.RaggedTensor) or t.shape.rank != 1 for t in batch.values()):
            # Exports take one string per field; pre-split words go in joined by spaces,
            # and the Keras serving graph is run on the very same strings.
            batch = {k: tf.strings.reduce_join(t, axis=-1, separator=" ")
                     if isinstance(t, tf.RaggedTensor) or t.shape.rank != 1 else t
                     for k, t in batch.items()}
            self.serving = {k: np.asarray(v) for k, v in self.serve(batch).items()}
        checked = []
        for format in formats:
            directory = os.path.join(self.workdir, f"export-{format}")
            try:
                written = export(self.model, format=format, destination=directory)
            except Exception as e:
                _fail(f"kerabert.export.export(format={format!r}) failed: {self._describe(e)}")
            if format == "savedmodel":
                self._compare_savedmodel(written, batch)
            elif format == "tflite":
                self._compare_tflite(written, batch)
            checked.append(format)
        self._note("export", f"exported {', '.join(checked)}")

    def _compare(self, format, outputs):
        for name, expected in self.serving.items():
            if name not in outputs:
                _fail(f"the {format} export lacks output {name!r} (has {sorted(outputs)})")
            actual = np.asarray(outputs[name])
            if actual.shape != expected.shape:
                _fail(f"{format} output {name!r} has shape {actual.shape}, the Keras model's "
                      f"serving_outputs {expected.shape}")
            if expected.dtype.kind in "fc":
                difference = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
                if difference > 1e-4:
                    _fail(f"{format} output {name!r} differs from the Keras model's "
                          f"serving_outputs by up to {difference:.3g}")
            elif not np.array_equal(actual.astype(expected.dtype), expected):
                _fail(f"{format} output {name!r} differs from the Keras model's "
                      f"serving_outputs: {actual!r:.200} vs {expected!r:.200}")

    def _compare_savedmodel(self, directory, batch):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)

        loaded = tf.saved_model.load(str(directory))
        signature = loaded.signatures.get("serving_default")
        if signature is None:
            _fail(f"the SavedModel has no serving_default signature "
                  f"(has {sorted(loaded.signatures)})")
        self._compare("savedmodel", signature(**dict(batch)))

    def _compare_tflite(self, directory, batch):
        from kerabert.export import tflite

        path = os.path.join(directory, tflite.MODEL_FILE)
        runner = tflite.interpreter(model_path=path).get_signature_runner("serving_default")
        inputs = {k: np.array([v.decode() if isinstance(v, bytes) else v
                               for v in np.asarray(t)], dtype=object) for k, t in batch.items()}
        outputs = runner(**inputs)
        self._compare("tflite", {k: v for k, v in outputs.items()})

    def step_search_space(self):
        try:
            import keras_tuner
        except ImportError:
            return "keras-tuner is not installed"
        hp = keras_tuner.HyperParameters()
        space = self.head.search_space(hp)
        if not isinstance(space, dict):
            _fail(f"search_space(hp) returned {type(space).__name__}, not a dict")
        unknown = [k for k in space if k not in hp.values]
        if unknown:
            _fail(f"search_space entries {unknown} are not hyperparameters made with hp")


_MISSING = object()


def _plain(value):
    """JSON-like data (numbers, strings, lists, dicts), which a config can carry."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _canonical(value):
    """Tuples and lists compare equal, as they do after a JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def _same(a, b, tolerance=1e-5):
    """Equal predictions: floats within `tolerance` (the same weights on another graph
    may round differently in the last bits), everything else exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tolerance) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            if float(a) == float(b):  # also infinities
                return True
            return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(a)))
        except (TypeError, ValueError):
            return False
    return a == b


def _inherited(cls, member, base):
    """`cls`'s `member` is `base`'s own (inherited or assigned from it)."""
    return inspect.getattr_static(cls, member, None) is inspect.getattr_static(base, member)


def _declares_contract_version(cls, base):
    """The class (or a base class other than `Head`) sets `contract_version` itself."""
    for klass in cls.__mro__:
        if klass is base:
            return False
        if "contract_version" in vars(klass):
            return True
    return False


def _exporter():
    """`kerabert.export.export`, if this kerabert has it."""
    try:
        from kerabert.export import export
    except ImportError:
        return None
    return export


def _export_formats(export):
    if export is True:
        return ("savedmodel",)
    if not export:
        return ()
    return (export,) if isinstance(export, str) else tuple(export)


__all__ = [
    "ConformanceError",
    "ConformanceReport",
    "StepResult",
    "TINY_VOCABULARY",
    "check_head",
    "tiny_backbone",
    "tiny_tokenizer",
]
