"""ONNX with the tokenizer in the graph: raw text in, label and scores out.

`kerabert export MODEL --format onnx --onnx-tokenizer` writes, beside the token-ids
`model.onnx` (kept for runtimes without the extensions, with `kerabert.export.client`),
`model_text.onnx`: onnxruntime-extensions' `BertTokenizer` op (domain
`ai.onnx.contrib`; the vocabulary is stored in the op, with kerabert's lower-casing and
accent stripping) -> the same numeric graph -> softmax, arg-max and the label names, as
the SavedModel's `serving_default` returns them. onnxruntime runs it once the
extensions library is registered:

```python
import numpy as np, onnxruntime, onnxruntime_extensions

options = onnxruntime.SessionOptions()
options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
session = onnxruntime.InferenceSession("savedmodels/sst2/5/model_text.onnx", options)
label, score, scores = session.run(None, {"text": np.array(["A fine film."], dtype=object)})
```

The op tokenizes one text (or one text and its pair) per call, so `text` (and
`text_pair`) have shape `[1]`. Single-label classification heads only; the other
heads keep the token-ids graph and the Python client.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerabert.export.serving import ExportError

MODEL_FILE = "model_text.onnx"
DOMAIN = "ai.onnx.contrib"


def check_classifier(model):
    """Raise `ExportError` unless `model` is a single-label text classifier."""
    from kerabert.heads.classification import TextClassificationHead

    head = model.head
    if not isinstance(head, TextClassificationHead) or head.multi_label:
        raise ExportError(
            f"--onnx-tokenizer is for single-label classification heads; head "
            f"{head.name!r} keeps the token-ids ONNX graph and kerabert.export.client")
    return head


def tokenizer_graph(model):
    """The tokenizer part: raw text -> `token_ids`, `segment_ids`, `padding_mask` (int32)."""
    from onnx import TensorProto, helper

    head = check_classifier(model)
    tokenizer = model.tokenizer
    texts = ["text"] + (["text_pair"] if head.text_pair else [])
    nodes = []
    if head.text_pair:  # the op takes a pair as one tensor of two strings
        nodes.append(helper.make_node("Concat", texts, ["tokenizer_input"], axis=0))
    nodes.append(helper.make_node(
        "BertTokenizer", ["tokenizer_input" if head.text_pair else "text"],
        ["tokenizer_ids", "tokenizer_segments", "tokenizer_mask"], domain=DOMAIN,
        vocab_file="\n".join(tokenizer.vocabulary),
        do_lower_case=int(bool(tokenizer.lowercase)),
        strip_accents=int(bool(tokenizer.lowercase)),  # FastBertTokenizer: both or neither
        unk_token=tokenizer.unknown_token, sep_token=tokenizer.sep_token,
        pad_token=tokenizer.pad_token, cls_token=tokenizer.cls_token,
        max_length=int(model.sequence_length),
    ))
    for source, target in (("tokenizer_ids", "token_ids"), ("tokenizer_segments", "segment_ids"),
                           ("tokenizer_mask", "padding_mask")):
        nodes.append(helper.make_node("Unsqueeze", [source, "batch_axis"], [f"{target}_64"]))
        nodes.append(helper.make_node("Cast", [f"{target}_64"], [target], to=TensorProto.INT32))
    graph = helper.make_graph(
        nodes, "kerabert_tokenizer",
        [helper.make_tensor_value_info(name, TensorProto.STRING, [1]) for name in texts],
        [helper.make_tensor_value_info(name, TensorProto.INT32, [1, "sequence"])
         for name in ("token_ids", "segment_ids", "padding_mask")],
        initializer=[helper.make_tensor("batch_axis", TensorProto.INT64, [1], [0])],
    )
    return graph


def decoder_nodes(model, logits, opset):
    """Nodes and constants turning `logits` into `label`, `score`, `scores`."""
    from onnx import TensorProto, helper

    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        reduce = helper.make_node("ReduceMax", ["scores", "last_axis"], ["score"], keepdims=0)
    else:
        reduce = helper.make_node("ReduceMax", ["scores"], ["score"], axes=[-1], keepdims=0)

    # The names the head's own decoding gives (label_names applied), as serving_outputs.
    names = getattr(model.head, "output_labels", None) or model.head.labels
    labels = helper.make_tensor("label_names", TensorProto.STRING, [len(names)],
                                [str(label).encode("utf-8") for label in names])
    nodes = [
        helper.make_node("Softmax", [logits], ["scores"], axis=-1),
        helper.make_node("ArgMax", ["scores"], ["best"], axis=-1, keepdims=0),
        helper.make_node("Gather", ["label_names", "best"], ["label"], axis=0),
        reduce,
    ]
    outputs = [helper.make_tensor_value_info("label", TensorProto.STRING, [1]),
               helper.make_tensor_value_info("score", TensorProto.FLOAT, [1]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT,
                                             [1, len(names)])]
    constants = [labels]
    if opset >= 18:
        constants.append(helper.make_tensor("last_axis", TensorProto.INT64, [1], [-1]))
    return nodes, constants, outputs


def compose(model, numeric):
    """The text-in `onnx.ModelProto` from the numeric (token-ids) ONNX model."""
    from onnx import helper

    head = check_classifier(model)
    tokenizer = tokenizer_graph(model)
    inputs = {value.name for value in numeric.graph.input}
    if inputs != {"token_ids", "segment_ids", "padding_mask"}:
        raise ExportError(f"--onnx-tokenizer: unexpected model inputs {sorted(inputs)}")
    logits = [value.name for value in numeric.graph.output]
    if len(logits) != 1:
        raise ExportError(f"--onnx-tokenizer: expected one output, got {logits}")
    opset = next(o.version for o in numeric.opset_import if o.domain in ("", "ai.onnx"))
    nodes, constants, outputs = decoder_nodes(model, logits[0], opset)
    graph = helper.make_graph(
        list(tokenizer.node) + list(numeric.graph.node) + nodes,
        f"kerabert_{head.name}_text",
        list(tokenizer.input), outputs,
        initializer=list(tokenizer.initializer) + list(numeric.graph.initializer) + constants,
        value_info=list(numeric.graph.value_info),
    )
    opsets = [o for o in numeric.opset_import if o.domain != DOMAIN]
    composed = helper.make_model(graph, opset_imports=opsets + [helper.make_opsetid(DOMAIN, 1)],
                                 producer_name="kerabert")
    composed.ir_version = numeric.ir_version
    return composed


def session(path):
    """An onnxruntime session with onnxruntime-extensions' kernels registered."""
    import onnxruntime
    import onnxruntime_extensions

    options = onnxruntime.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def write(model, directory, *, numeric_file="model.onnx", **unused):
    """Write `model_text.onnx` from `directory/model.onnx`; returns extra card facts."""
    import onnx

    try:
        import onnxruntime_extensions  # noqa: F401
    except ImportError as e:
        raise ExportError("--onnx-tokenizer needs onnxruntime-extensions (kerabert's "
                          "`deploy` extra)") from e
    directory = Path(directory)
    composed = compose(model, onnx.load(str(directory / numeric_file)))
    onnx.save(composed, str(directory / MODEL_FILE))
    loaded = session(directory / MODEL_FILE)  # proves onnxruntime resolves every op
    sample = {value.name: np.array(["kerabert export check ."], dtype=object)
              for value in loaded.get_inputs()}
    loaded.run(None, sample)
    describe = lambda values: {v.name: (v.type, list(v.shape)) for v in values}  # noqa: E731
    return {
        "signatures": {"onnx_text": (describe(loaded.get_inputs()),
                                     describe(loaded.get_outputs()))},
        "requires": ["model_text.onnx: onnxruntime with the onnxruntime-extensions "
                     "library registered (one text per call)"],
    }
