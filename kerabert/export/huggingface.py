"""`format="huggingface"`: a folder `transformers` loads, head and labels included.

`config.json` (`BertFor...` with `id2label`), `model.safetensors`, `vocab.txt`,
`tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`, written by
`kerabert.huggingface.write_folder`, so `AutoModelFor...from_pretrained(folder)` and
`AutoTokenizer.from_pretrained(folder)` give the Keras model's logits and token ids.
The model card's `README.md` is the Hugging Face model card.
"""

from __future__ import annotations

from kerabert.export.serving import ExportError


def check(model):
    """Raise `ExportError` (naming what) unless the model has a Hugging Face architecture;
    run before the export folder is made."""
    from kerabert.backbone import BertBackbone
    from kerabert.validation import CheckpointError
    from kerabert.huggingface import architecture_of

    if not isinstance(model.backbone, BertBackbone):
        raise ExportError(
            f"--format huggingface writes BERT folders; this model's backbone is "
            f"{getattr(model.backbone, 'family', type(model.backbone).__name__)} (the way "
            "back for the other BERT-family models is not built)")
    try:
        return architecture_of(model.head)
    except CheckpointError as e:
        raise ExportError(str(e)) from None


def write(model, directory, **unused):
    """Write the Hugging Face folder into `directory`; returns the model-card facts."""
    from kerabert.validation import CheckpointError
    from kerabert.huggingface import write_folder

    try:
        written = write_folder(model, directory)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    return {
        "huggingface": written,
        "requires": [f"transformers (AutoModelFor... / {written['architecture']}) and "
                     "torch, or any library reading Hugging Face BERT folders"],
    }
