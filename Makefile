# Two entry points for a fresh machine (Python 3.11 + make; nothing else):
#   make demo   set up .venv and run a small study on scikit-learn's digits (offline, < 3 min)
#   make test   set up .venv with the test tools and run the whole test suite
.PHONY: setup setup-dev demo test lint

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
