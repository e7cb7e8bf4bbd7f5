# Two entry points for a fresh machine (Python 3.11 + make; nothing else):
#   make demo   set up .venv and run a small study on scikit-learn's digits (offline, ~2.5 min the first time)
#   make test   set up .venv with the test tools and run the whole test suite
#   make results  re-run the fast examples and rewrite README's results table (RESULTS_ARGS=--quick
#                 for their quick: budgets; data from $TUNELAB_DATA_DIR, else ../shared/data)
.PHONY: setup setup-dev demo test lint results

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh dev

demo: setup
	.venv/bin/tunelab tune examples/demo_digits.yaml --out runs/demo_digits

test: setup-dev
	.venv/bin/python -m ruff check .
	.venv/bin/python -m pytest

lint: setup-dev
	.venv/bin/python -m ruff check .

results: setup
	TUNELAB_DATA_DIR="$${TUNELAB_DATA_DIR:-$(abspath $(CURDIR)/../shared/data)}" .venv/bin/python scripts/results.py $(RESULTS_ARGS)
