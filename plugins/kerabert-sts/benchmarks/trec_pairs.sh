#!/usr/bin/env bash
# Train and export the sentence-similarity head on graded question pairs derived from
# TREC (../shared/data/trec), and score the zero-shot reference on the same dev pairs.
#
#   flock /tmp/kerabert-bench.lock bash plugins/kerabert-sts/benchmarks/trec_pairs.sh
#
# Derived data and outputs go to $OUT (default /tmp/kerabert-sts-bench), never the repo.
set -euo pipefail
DATA=${KERABERT_SHARED_DATA:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared/data}
OUT=${OUT:-/tmp/kerabert-sts-bench}
EPOCHS=${EPOCHS:-2}
HERE=$(dirname "$0")
mkdir -p "$OUT"

python -m kerabert_sts.pairs "$DATA/trec/train.txt" "$OUT/train.tsv" --pairs 6000 --seed 0
python -m kerabert_sts.pairs "$DATA/trec/dev.txt" "$OUT/dev.tsv" --pairs 1500 --seed 1

python "$HERE/zero_shot.py" "$OUT/dev.tsv" | tee "$OUT/zero_shot.json"

/usr/bin/time -v kerabert train --head sentence-similarity \
  --train "$OUT/train.tsv" --validation "$OUT/dev.tsv" --output "$OUT/run" \
  --epochs "$EPOCHS" --batch-size 32 --sequence-length 64 --learning-rate 5e-5 \
  --head-option 'score_range=[0,1]' 2> "$OUT/train.time" | tee "$OUT/train.json"
grep -E "Maximum resident|Elapsed" "$OUT/train.time" || true

rm -rf "$OUT/savedmodel" "$OUT/model.tflite.d"
kerabert export "$OUT/run" --format savedmodel --output "$OUT/savedmodel"
kerabert export "$OUT/run" --format tflite --output "$OUT/model.tflite.d"
kerabert predict "$OUT/run" \
  --text "What is the capital of Peru ?" --text-pair "Where is Lima located ?" \
  --text "What is the capital of Peru ?" --text-pair "Who wrote Hamlet ?"
# The SavedModel takes raw text and returns the rescaled score.
python - "$OUT/savedmodel" <<'PY'
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer's ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(text=tf.constant(["What is the capital of Peru ?"] * 2),
            text_pair=tf.constant(["Where is Lima located ?", "Who wrote Hamlet ?"]))
print(json.dumps({"savedmodel_scores": [round(float(x), 6) for x in out["score"].numpy()]}))
PY
