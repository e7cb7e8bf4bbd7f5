"""The application layer: the one place where a command happens.

One module per command: `train`, `tune`, `work`, `final`, `predict`, and `evidence` (decisions.md,
report.html, `diagnose`, `report`). `cli.py` parses and prints around these functions;
`tunelab/__init__.py` re-exports them. Only this layer reaches `diagnose` and `report`.
"""
