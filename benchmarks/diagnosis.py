"""Judgement benchmark: run the diagnosis corpus (tests/diagnosis_corpus/) and print, per study, the
warnings found, the expected ones missing and the false alarms, then warning precision and recall,
invalid suggestions and contradicting pairs over the corpus.

    PYTHONPATH=src python benchmarks/diagnosis.py [CASE ...]

Each study is a real, small `tune` on offline data (scikit-learn sets and a synthetic one).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from diagnosis_corpus.corpus import report, run_corpus


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        score = run_corpus(Path(tmp), tuple(sys.argv[1:]))
        print(report(score))
        print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
