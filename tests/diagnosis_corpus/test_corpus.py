"""The judgement corpus in CI: warnings precise and complete, advice valid, no contradictions, and the
healthy studies silent. The studies are real (small) tunes, run once for the module."""

from __future__ import annotations

from pathlib import Path

import pytest

from .corpus import WARNINGS, Score, report, run_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Score:
    return run_corpus(Path(tmp_path_factory.mktemp("corpus")))


def test_warning_precision_and_recall(corpus: Score) -> None:
    text = report(corpus)
    assert len(corpus.results) >= 12, text
    assert corpus.precision >= 0.9, text
    assert corpus.recall >= 0.8, text


def test_every_suggestion_validates_and_nothing_contradicts(corpus: Score) -> None:
    assert corpus.invalid == 0, report(corpus)
    assert corpus.contradicting == 0, report(corpus)
    assert sum(len(r.findings) for r in corpus.results) >= 12  # the check saw real advice


def test_no_forbidden_finding_and_healthy_studies_are_silent(corpus: Score) -> None:
    for result in corpus.results:
        assert not result.forbidden, f"{result.case.name}: {sorted(result.forbidden)}\n{report(corpus)}"
        if result.case.name.startswith("healthy"):
            assert not [f for f in result.findings if f.severity in WARNINGS], report(corpus)
