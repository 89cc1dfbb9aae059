"""Peak memory of an ONNX export: kerabert against PyTorch's exporter, same model, one run.

    pip install -r benchmarks/requirements.txt
    python benchmarks/onnx_export_memory.py HF_FOLDER

HF_FOLDER is a fine-tuned `BertForSequenceClassification` (e.g. the one
`benchmarks/hf_same_budget.py --save` writes). Each contender runs in its own process
under `/usr/bin/time -v` (its maximum resident set size): kerabert loads the folder
(`kerabert.load_model`) and runs `kerabert.export(..., format="onnx")`; PyTorch loads it
with transformers and runs `torch.onnx.export` with the TorchScript exporter (the
dynamo exporter needs onnxscript, which is not installed here), opset 17, dynamic batch
and length. The loaded-model row is each process after loading only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine

KERABERT = """
import sys, kerabert
model = kerabert.load_model(sys.argv[1], compile=False)
if sys.argv[3] == "export":
    kerabert.export(model, format="onnx", destination=sys.argv[2])
"""
PYTORCH = """
import sys, torch, transformers
model = transformers.AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
if sys.argv[3] == "export":
    ids = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "length"}
    torch.onnx.export(model, (ids, ids, torch.zeros_like(ids)), sys.argv[2] + ".onnx",
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                    "token_type_ids": axes, "logits": {0: "batch"}})
"""


def peak_gb(code, folder, out, what):
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code, folder, out,
                             what], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    seconds = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
                        result.stderr)[1]
    return round(kb / 1024 ** 2, 2), seconds


def main():
    folder = sys.argv[1]
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, code in (("kerabert", KERABERT), ("pytorch-torchscript", PYTORCH)):
            loaded, _ = peak_gb(code, folder, str(Path(scratch) / f"{name}-load"), "load")
            peak, wall = peak_gb(code, folder, str(Path(scratch) / name), "export")
            rows[name] = {"loaded_peak_gb": loaded, "export_peak_gb": peak,
                          "export_over_loaded": round(peak / loaded, 2), "wall": wall}
    print(machine())
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
