# GPT4Tools: `make demo` sets up and launches the demo, `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
export OMP_NUM_THREADS ?= 1
export GRADIO_ANALYTICS_ENABLED = False

.PHONY: setup demo test check

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) gpt4tools.py $(ARGS)

test:
	@DEV=1 bash scripts/setup.sh
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/pytest -q $(ARGS)

check:
	@DEV=1 bash scripts/setup.sh
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
