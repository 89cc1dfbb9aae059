"""Hugging Face BERT checkpoints in and out, heads included.

One table (`kerabert.hf_weights.backbone_weights` and `head_weights` here) names every
weight of a kerabert task in Hugging Face's layout, and serves both directions:

- in: `kerabert.load_model(folder)` (with `read_task` and `load_head_weights`) turns a
  fine-tuned `BertForSequenceClassification` (single-
  or multi-label, from `problem_type`), `BertForTokenClassification`,
  `BertForQuestionAnswering`, `BertForMaskedLM` or `BertForPreTraining` folder into the
  matching kerabert `Task`, with the head's weights and label names (`id2label`);
  every CLI command that takes a model does the same for such a folder. (`kerabert.load_backbone` reads any Hugging Face BERT encoder with the same
  table: `kerabert.hf_weights`.)
- out: `write_folder(model, directory)` writes what `transformers`'
  `AutoModelFor...from_pretrained` and `AutoTokenizer.from_pretrained` load:
  `config.json` (with `id2label`), `model.safetensors`, `vocab.txt`, `tokenizer.json`,
  `tokenizer_config.json`, `special_tokens_map.json`; `kerabert export --format
  huggingface` runs it.

`config.json` also records the kerabert head (`kerabert.head`, `kerabert.sequence_length`),
which transformers keeps as an unused attribute: a folder kerabert wrote loads back
with the very head it was exported from (label values and names, pairs, thresholds).

Example:
```python
model = kerabert.load_model("path/to/bert-finetuned-sst2")   # a Hugging Face folder
model.predict_examples({"text": ["A fine film."]})
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kerabert.hf_weights import Port, Tensors, assign, backbone_weights, linear
from kerabert.validation import CheckpointError

SEQUENCE_CLASSIFICATION = "BertForSequenceClassification"
TOKEN_CLASSIFICATION = "BertForTokenClassification"
QUESTION_ANSWERING = "BertForQuestionAnswering"
MASKED_LM = "BertForMaskedLM"
PRETRAINING = "BertForPreTraining"
#: The fine-tuned architectures `read_task` reads (and `write_folder` writes).
ARCHITECTURES = (SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION, QUESTION_ANSWERING,
                 MASKED_LM, PRETRAINING)
#: Architectures whose checkpoints have BERT's pooler (the others have none).
_WITH_POOLER = (SEQUENCE_CLASSIFICATION, PRETRAINING)
KERABERT_KEY = "kerabert"


def architecture_of(head) -> str:
    """The Hugging Face architecture a kerabert head is, or `CheckpointError`."""
    from kerabert.heads.classification import TextClassificationHead
    from kerabert.heads.masked_lm import MaskedLMHead
    from kerabert.heads.span import QuestionAnsweringHead
    from kerabert.heads.tagging import TokenClassificationHead

    if isinstance(head, TextClassificationHead):
        return SEQUENCE_CLASSIFICATION
    if isinstance(head, TokenClassificationHead):
        if head.case_feature:
            raise CheckpointError(
                f"head {head.name!r} has the case feature (case_feature=True), which "
                "BertForTokenClassification has no place for: train with "
                "`--head-option case_feature=false` to move the model to Hugging Face")
        return TOKEN_CLASSIFICATION
    if isinstance(head, QuestionAnsweringHead):
        return QUESTION_ANSWERING
    if isinstance(head, MaskedLMHead):
        return PRETRAINING if head.next_sentence else MASKED_LM
    raise CheckpointError(
        f"head {head.name!r} ({type(head).__name__}) has no Hugging Face BERT architecture; "
        f"these do: {', '.join(ARCHITECTURES)} (kerabert's text-classification, sentiment, "
        "ner, qa and masked-lm heads)")


def head_weights(model) -> dict[str, Port]:
    """`{Hugging Face name: Port}` of a task's head layers (full names, no prefix)."""
    from kerabert import compat
    from kerabert.heads.masked_lm import NSP_OUTPUT

    architecture = architecture_of(model.head)
    if architecture in (SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION):
        logits = model.get_layer("logits")
        return {"classifier.weight": linear(logits.kernel),
                "classifier.bias": Port(logits.bias)}
    if architecture == QUESTION_ANSWERING:
        dense = model.get_layer("span_logits").dense
        return {"qa_outputs.weight": linear(dense.kernel), "qa_outputs.bias": Port(dense.bias)}
    mlm = compat.masked_lm_head_variables(model.get_layer("mlm_head"))
    ports = {
        "cls.predictions.transform.dense.weight": linear(mlm["dense_kernel"]),
        "cls.predictions.transform.dense.bias": Port(mlm["dense_bias"]),
        "cls.predictions.transform.LayerNorm.weight": Port(mlm["norm_gamma"]),
        "cls.predictions.transform.LayerNorm.bias": Port(mlm["norm_beta"]),
        "cls.predictions.bias": Port(mlm["output_bias"]),
    }
    if architecture == PRETRAINING:
        nsp = model.get_layer(NSP_OUTPUT)
        ports["cls.seq_relationship.weight"] = linear(nsp.kernel)
        ports["cls.seq_relationship.bias"] = Port(nsp.bias)
    return ports


# -- in --------------------------------------------------------------------------------------


def read_config(folder) -> dict:
    from kerabert.hf_folder import read_json

    path = Path(folder) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{folder}: no config.json")
    return read_json(path)


def is_folder(path) -> bool:
    """Whether `path` is a Hugging Face model folder (a `config.json` with a
    `model_type`): `kerabert.load_model` reads such a folder with `read_task`, whose
    errors say what in it kerabert cannot read."""
    path = Path(path)
    if not path.is_dir() or not (path / "config.json").is_file():
        return False
    try:
        return "model_type" in read_config(path)
    except CheckpointError:
        return True  # unreadable JSON: `read_task` names the line


def _labels(config, config_path, what):
    id2label = config.get("id2label") or {}
    count = config.get("num_labels") or len(id2label)
    try:
        labels = [str(id2label[str(i)] if str(i) in id2label else id2label[i])
                  for i in range(count)]
    except KeyError as e:
        raise CheckpointError(f"{config_path}: id2label has no label for class {e}: "
                              f"the {what} needs one name per class 0..{count - 1}") from None
    if len(set(labels)) != len(labels):
        raise CheckpointError(f"{config_path}: id2label names two classes the same: {labels}")
    return labels


def head_for(config: dict, folder) -> Any:
    """The kerabert head of a fine-tuned checkpoint's `config.json`."""
    from kerabert.heads import registry

    config_path = Path(folder) / "config.json"
    if config.get("model_type") != "bert":
        from kerabert.families import FAMILIES

        hint = (" Its encoder loads as a backbone: --backbone FOLDER, or "
                "kerabert.load_backbone(folder)." if config.get("model_type") in FAMILIES else "")
        raise CheckpointError(f"{config_path}: model_type {config.get('model_type')!r} is not "
                              "BERT (kerabert loads fine-tuned heads of model_type bert "
                              f"checkpoints).{hint}")
    saved = config.get(KERABERT_KEY) or {}
    if saved.get("head"):
        return registry.get(saved["head"]["name"]).from_config(saved["head"].get("config", {}))
    architecture = (config.get("architectures") or [None])[0]
    dropout = config.get("classifier_dropout")
    dropout = config.get("hidden_dropout_prob", 0.1) if dropout is None else dropout
    if architecture == SEQUENCE_CLASSIFICATION:
        problem = config.get("problem_type")
        if problem == "regression" or (problem is None and config.get("num_labels") == 1):
            raise CheckpointError(f"{config_path}: problem_type regression (one output) is "
                                  "not a kerabert head; classification checkpoints load")
        labels = _labels(config, config_path, "classifier")
        return registry.get("text-classification")(
            labels=labels, multi_label=problem == "multi_label_classification",
            dropout=dropout)
    if architecture == TOKEN_CLASSIFICATION:
        labels = _labels(config, config_path, "tagger")
        scheme = "BIOES" if any(label[:2] in ("S-", "E-") for label in labels) else "IOB2"
        try:
            return registry.get("ner")(labels=labels, scheme=scheme, dropout=dropout,
                                       case_feature=False)
        except ValueError as e:
            raise CheckpointError(
                f"{config_path}: id2label {labels} are not entity tags ({e}); kerabert's "
                "ner head needs O and B-/I- (or BIOES) tags: name them in id2label") from None
    if architecture == QUESTION_ANSWERING:
        return registry.get("qa")()
    if architecture in (MASKED_LM, PRETRAINING):
        return registry.get("masked-lm")(next_sentence=architecture == PRETRAINING)
    raise CheckpointError(
        f"{config_path}: architectures {config.get('architectures')} name no fine-tuned "
        f"BERT task kerabert loads ({', '.join(ARCHITECTURES)}); a BertModel checkpoint is "
        "a backbone: pass it as --backbone / backbone=")


def read_task(folder: str | os.PathLike, *,
              sequence_length: int | None = None) -> tuple[Any, Any, Any, int]:
    """The parts of the kerabert task a fine-tuned Hugging Face BERT folder holds;
    `kerabert.load_model(folder)` builds the `Task` from them and calls
    `load_head_weights`.

    Args:
        folder: a folder with `config.json` (`architectures` one of `ARCHITECTURES`),
            `model.safetensors` and the vocabulary (`vocab.txt` or `tokenizer.json`).
        sequence_length: the packed length (default: what kerabert recorded on export,
            else the head's recipe length, at most the checkpoint's positions).

    Returns:
        `(backbone, head, tokenizer, sequence_length)`, the backbone with its weights.
    """
    from kerabert.backbone import load_backbone

    folder = Path(folder)
    config = read_config(folder)
    head = head_for(config, folder)
    backbone, tokenizer = load_backbone(folder)
    if sequence_length is None:
        sequence_length = (config.get(KERABERT_KEY) or {}).get("sequence_length") or min(
            head.recipe.get("sequence_length", 128), backbone.max_sequence_length)
    return backbone, head, tokenizer, int(sequence_length)


def load_head_weights(model, folder: str | os.PathLike) -> None:
    """Load a fine-tuned Hugging Face folder's head weights into the task built on it."""
    from kerabert.heads.masked_lm_weights import read_head_weights

    architecture = architecture_of(model.head)
    if architecture in (MASKED_LM, PRETRAINING):
        found = read_head_weights(folder)
        groups = {"mlm", "nsp"} if architecture == PRETRAINING else {"mlm"}
        if found is None or not groups <= set(found.weights):
            raise CheckpointError(f"{folder}: a {architecture} checkpoint without its head "
                                  f"weights (no {' / '.join(sorted(groups))} tensors)")
        model.head.load_checkpoint_weights(model, folder)
    else:
        assign(head_weights(model), Tensors(folder))


# -- out -------------------------------------------------------------------------------------


def hf_config(model) -> dict:
    """The `config.json` of a task in Hugging Face's `BertConfig` fields."""
    backbone, head = model.backbone, model.head
    architecture = architecture_of(head)
    activation = getattr(backbone, "hidden_activation", "gelu_approximate")
    config = {
        "architectures": [architecture],
        "model_type": "bert",
        "vocab_size": int(backbone.vocabulary_size),
        "hidden_size": int(backbone.hidden_dim),
        "num_hidden_layers": int(backbone.num_layers),
        "num_attention_heads": int(backbone.num_heads),
        "intermediate_size": int(backbone.intermediate_dim),
        "hidden_act": {"gelu": "gelu", "gelu_approximate": "gelu_new"}.get(activation,
                                                                          activation),
        "max_position_embeddings": int(backbone.max_sequence_length),
        "type_vocab_size": int(backbone.num_segments),
        "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": float(backbone.dropout),
        "attention_probs_dropout_prob": float(backbone.dropout),
        "initializer_range": 0.02,
        "pad_token_id": int(model.tokenizer.pad_id),
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        KERABERT_KEY: {"head": {"name": head.name, "config": head.get_config()},
                       "sequence_length": int(model.sequence_length)},
    }
    if architecture in (SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION):
        labels = getattr(head, "output_labels", None) or head.labels
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}
        config["classifier_dropout"] = float(head.dropout)
    if architecture == SEQUENCE_CLASSIFICATION:
        config["problem_type"] = ("multi_label_classification" if head.multi_label
                                  else "single_label_classification")
    return config


def tokenizer_files(tokenizer) -> dict[str, str]:
    """`{file name: text}` of the tokenizer as transformers and `tokenizers` read it."""
    vocabulary = list(tokenizer.vocabulary)
    lowercase = bool(tokenizer.lowercase)
    special = {"unk_token": tokenizer.unknown_token, "sep_token": tokenizer.sep_token,
               "pad_token": tokenizer.pad_token, "cls_token": tokenizer.cls_token,
               "mask_token": tokenizer.mask_token}
    index = {token: i for i, token in enumerate(vocabulary)}
    added = [{"id": index[t], "content": t, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for t in sorted(set(special.values()) & set(index), key=index.get)]
    cls, sep = tokenizer.cls_token, tokenizer.sep_token

    def token(name, type_id):
        return {"SpecialToken": {"id": name, "type_id": type_id}}

    def segment(name, type_id):
        return {"Sequence": {"id": name, "type_id": type_id}}

    tokenizer_json = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        # kerabert lower-cases and strips accents together (its in-graph tokenizer).
        "normalizer": {"type": "BertNormalizer", "clean_text": True,
                       "handle_chinese_chars": True, "strip_accents": lowercase,
                       "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [token(cls, 0), segment("A", 0), token(sep, 0)],
            "pair": [token(cls, 0), segment("A", 0), token(sep, 0), segment("B", 1),
                     token(sep, 1)],
            "special_tokens": {t: {"id": t, "ids": [index[t]], "tokens": [t]}
                               for t in (cls, sep)},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": tokenizer.unknown_token,
                  "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                  "vocab": index},
    }
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase,
                        "strip_accents": lowercase, "tokenize_chinese_chars": True,
                        **special}
    return {
        "vocab.txt": "\n".join(vocabulary) + "\n",
        "tokenizer.json": json.dumps(tokenizer_json, ensure_ascii=False),
        "tokenizer_config.json": json.dumps(tokenizer_config, indent=2),
        "special_tokens_map.json": json.dumps(special, indent=2),
    }


def write_folder(model, directory) -> dict:
    """Write a task as a Hugging Face folder `transformers` loads; returns a summary."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    config = hf_config(model)
    architecture = config["architectures"][0]
    ports = {f"bert.{name}": port for name, port in backbone_weights(
        model.backbone, pooler=architecture in _WITH_POOLER).items()}
    ports.update(head_weights(model))
    tensors = {name: port.to_hf(port.variable.numpy()) for name, port in ports.items()}
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    with open(directory / "config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
    for name, text in tokenizer_files(model.tokenizer).items():
        (directory / name).write_text(text, encoding="utf-8")
    return {"architecture": architecture, "tensors": len(tensors)}
