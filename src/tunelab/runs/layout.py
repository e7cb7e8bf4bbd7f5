"""Every path inside a run folder; no other module builds one (the folder is the contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrialLayout:
    """One trial's folder: `trials/<number>-<short name>/`."""

    root: Path

    @property
    def params_json(self) -> Path:
        return self.root / "params.json"

    @property
    def metrics_jsonl(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def metrics_log(self) -> Path:
        return self.root / "metrics.log"

    @property
    def grad_norms_jsonl(self) -> Path:
        return self.root / "grad_norms.jsonl"

    @property
    def result_json(self) -> Path:
        return self.root / "result.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:05d}.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    def epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """Epoch checkpoints on disk, newest first."""
        found = []
        for path in self.checkpoints.glob("epoch_*.pt"):
            match = re.fullmatch(r"epoch_(\d+)\.pt", path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)


@dataclass(frozen=True)
class RunLayout:
    """A study's folder: `runs/<study>/`."""

    root: Path

    @property
    def experiment_yaml(self) -> Path:
        return self.root / "experiment.yaml"

    @property
    def study_db(self) -> Path:
        return self.root / "study.db"

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    def trial(self, number: int, short_name: str) -> TrialLayout:
        return TrialLayout(self.trials / f"{number}-{short_name}")

    def trial_dirs(self) -> list[TrialLayout]:
        """Trial folders in trial-number order."""
        if not self.trials.is_dir():
            return []
        found = []
        for path in self.trials.iterdir():
            head = path.name.split("-", 1)[0]
            if path.is_dir() and head.isdigit():
                found.append((int(head), path))
        return [TrialLayout(p) for _, p in sorted(found)]

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def optimization_history(self) -> Path:
        return self.root / "optimization_history.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def data_checks(self) -> Path:
        """Hygiene checks of the prepared data (`data/checks.py`), written once per run folder."""
        return self.root / "data_checks.json"

    @property
    def decisions_md(self) -> Path:
        return self.root / "decisions.md"

    @property
    def final(self) -> Path:
        return self.root / "final"
