#!/usr/bin/env bash
# Run inference.py on NUM_GPUS chunks in parallel (one per GPU), then gather and evaluate.
#
#   bash scripts/batch_inference.sh NUM_GPUS BASE_MODEL LORA_MODEL ANN_PATH SAVE_NAME [extra inference.py flags]
#   bash scripts/batch_inference.sh 8 /models/vicuna-13b output/gpt4tools data/gpt4tools_val_seen.json vicuna13b_lora
#   bash scripts/batch_inference.sh 1 /tmp/tiny none tests/assets/eval/annotations.json tiny --max_new_tokens 16   # CPU
#
# Any NUM_GPUS works (NUM_GPUS=1 on a CPU-only machine too). Environment: SAVE_PATH (default
# output/eval_result), PYTHON (default python). Each chunk logs to SAVE_PATH/SAVE_NAME/SAVE_NAME_IDX.log.
# If any chunk fails the script says which, shows the end of its log, and exits non-zero before evaluating.
set -euo pipefail

if [ "$#" -lt 5 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
NUM_GPUS=$1 BASE_MODEL=$2 LORA_MODEL=$3 ANN_PATH=$4 SAVE_NAME=$5
shift 5
if ! [[ "$NUM_GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "batch_inference.sh: NUM_GPUS must be a positive integer, got '$NUM_GPUS'" >&2
    exit 2
fi
SAVE_PATH=${SAVE_PATH:-output/eval_result}
PYTHON=${PYTHON:-python}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$SAVE_PATH/$SAVE_NAME"
mkdir -p "$OUT_DIR"

declare -a PIDS=()
for ((IDX = 0; IDX < NUM_GPUS; IDX++)); do
    CUDA_VISIBLE_DEVICES=$IDX "$PYTHON" "$ROOT/inference.py" \
        --base_model "$BASE_MODEL" --lora_model "$LORA_MODEL" --ann_path "$ANN_PATH" \
        --save_path "$SAVE_PATH" --save_name "$SAVE_NAME" \
        --num-chunks "$NUM_GPUS" --chunk-idx "$IDX" "$@" >"$OUT_DIR/${SAVE_NAME}_${IDX}.log" 2>&1 &
    PIDS[IDX]=$!
done

FAILED=()
for ((IDX = 0; IDX < NUM_GPUS; IDX++)); do
    if ! wait "${PIDS[IDX]}"; then
        FAILED+=("$IDX")
    fi
done
if [ "${#FAILED[@]}" -gt 0 ]; then
    for IDX in "${FAILED[@]}"; do
        echo "batch_inference.sh: chunk $IDX FAILED (log: $OUT_DIR/${SAVE_NAME}_${IDX}.log):" >&2
        tail -n 5 "$OUT_DIR/${SAVE_NAME}_${IDX}.log" >&2 || true
    done
    echo "batch_inference.sh: ${#FAILED[@]} of $NUM_GPUS chunks failed; fix the cause and re-run with --resume." >&2
    exit 1
fi

"$PYTHON" "$ROOT/evaluate_result.py" --ann_path "$ANN_PATH" --save_path "$SAVE_PATH" --save_name "$SAVE_NAME" \
    --num-chunks "$NUM_GPUS"
