"""Config and tokenizer reading shared by the family loaders (errors name the file and
field)."""

from __future__ import annotations

from kerabert import hf_folder
from kerabert.validation import CheckpointError

__all__ = ["CheckpointError", "activation", "byte_pair_tokenizer", "embedding_layers", "expect",
           "field", "sentencepiece_tokenizer", "wordpiece_tokenizer"]


def field(config, key, config_path, default=None):
    """`config[key]`; a `CheckpointError` names the file and field when it is missing."""
    if key in config:
        return config[key]
    if default is not None:
        return default
    raise CheckpointError(f"{config_path}: missing field {key!r}")


def expect(config, key, allowed, config_path, default=None):
    """Refuse a config value keras-hub's backbone cannot compute, naming it."""
    value = config.get(key, default)
    if value not in allowed:
        raise CheckpointError(
            f"{config_path}: {key} {value!r} is not supported (kerabert's backbone for "
            f"model_type {config.get('model_type')!r} needs {' or '.join(map(repr, allowed))})")
    return value


def embedding_layers(encoder):
    """keras-hub's token, position and segment embeddings and their norm, by layer name
    (ELECTRA, ALBERT), in `kerabert.hf_weights.embedding_weights`' order."""
    return [encoder.get_layer(name) for name in ("token_embedding", "position_embedding",
                                                 "embeddings_layer_norm", "segment_embedding")]


def activation(config, key, config_path, default="gelu"):
    """kerabert's activation name for the config's `hidden_act`-style field."""
    name = config.get(key, default)
    if name not in hf_folder.HF_ACTIVATIONS:
        raise CheckpointError(f"{config_path}: {key} {name!r} is not supported")
    return hf_folder.HF_ACTIVATIONS[name]


def wordpiece_tokenizer(path, lowercase):
    """The WordPiece `BertTokenizer` of a DistilBERT or ELECTRA folder."""
    from kerabert.tokenizer import BertTokenizer

    if lowercase is None:
        lowercase = hf_folder.hf_lowercase(path)
    return BertTokenizer(vocabulary=hf_folder.hf_vocabulary(path), lowercase=lowercase)


def byte_pair_tokenizer(path, lowercase):
    """The byte-level `BytePairTokenizer` of a RoBERTa folder, from its `tokenizer.json`
    (byte-level BPE has no casing to change)."""
    from kerabert.byte_pair import BytePairTokenizer

    tokenizer_json = path / "tokenizer.json"
    if not tokenizer_json.exists():
        raise CheckpointError(
            f"{path}: no tokenizer.json: write it with transformers: "
            "AutoTokenizer.from_pretrained(folder).save_pretrained(folder)")
    if lowercase:
        raise CheckpointError(f"{tokenizer_json}: byte-level BPE does not lower-case; "
                              "lowercase= cannot change it")
    return BytePairTokenizer.from_tokenizer_json(tokenizer_json)


def sentencepiece_tokenizer(path, lowercase):
    """The `SentencePieceTokenizer` of an ALBERT, XLM-RoBERTa or DeBERTa-v3 folder, from its
    `tokenizer.json` (the normalization is the checkpoint's: `lowercase` cannot change it)."""
    from kerabert.sentencepiece import SentencePieceTokenizer

    tokenizer_json = path / "tokenizer.json"
    if not tokenizer_json.exists():
        models = sorted(p.name for p in path.glob("*.model"))
        raise CheckpointError(
            f"{path}: no tokenizer.json{f' (only {models})' if models else ''}: write it "
            "with transformers: AutoTokenizer.from_pretrained(folder).save_pretrained(folder)")
    tokenizer = SentencePieceTokenizer.from_tokenizer_json(tokenizer_json)
    if lowercase is not None and bool(lowercase) != tokenizer.lowercase:
        raise CheckpointError(
            f"{tokenizer_json}: the SentencePiece tokenizer {'lower-cases' if tokenizer.lowercase else 'keeps case'}; "
            "lowercase= cannot change a SentencePiece model's normalization")
    return tokenizer
