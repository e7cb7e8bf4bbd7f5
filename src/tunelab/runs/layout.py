"""Every path inside a run folder; no other module builds one (the folder is the contract)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

MAX_FOLDER_NAME = 80  # well under every file system's 255-byte limit, leaving room for suffixes


def folder_name(label: str) -> str:
    """A name (of an experiment or a stage) as one safe folder name: names are labels, never paths.

    ASCII letters, digits, `.`, `_` and `-` are kept (accents lose their marks), anything else
    becomes `_`, and no leading dot survives (`..` cannot climb out of `runs/`). A name that had
    to change a lot or be cut short gets 8 hex digits of its hash, so two names stay two folders.
    """
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).lstrip(".")
    if safe and len(safe) <= MAX_FOLDER_NAME and ascii_text == label and not label.startswith("."):
        return safe
    digest = hashlib.sha256(label.encode("utf-8")).hexdigest()[:8]
    return f"{safe[: MAX_FOLDER_NAME - 9]}-{digest}" if safe else f"experiment-{digest}"


def default_run_dir(name: str, suffix: str = "") -> Path:
    """`runs/<name as a folder name><suffix>`: where a run goes when no `--out` is given."""
    return Path("runs") / f"{folder_name(name)}{suffix}"


def not_a_run_folder(path: Path) -> str:
    """Why `path` is no run folder, in one line; an experiment file given by mistake gets the folder to give."""
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            name = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("name") or path.stem
        except (OSError, UnicodeDecodeError, AttributeError, yaml.YAMLError):
            name = path.stem
        return (f"{path} is an experiment file, not a run folder; give the folder its run wrote "
                f"({default_run_dir(str(name))} by default, printed as 'run folder')")
    return f"{path} is not a tunelab run folder (no experiment.yaml)"


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
    def cost_json(self) -> Path:
        """What the configuration costs on its own (train/cost.py): time, memory, latency, parameters."""
        return self.root / "cost.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:05d}.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    def seed(self, i: int) -> TrialLayout:
        """Seed repeat `i` of a configuration trained with several seeds: a full trial folder of its own."""
        return TrialLayout(self.root / f"seed-{i}")

    def seeds(self, count: int) -> list[TrialLayout]:
        """One seed: the trial folder itself; k seeds: `seed-<i>/` inside it."""
        return [self] if count <= 1 else [self.seed(i) for i in range(count)]

    def seed_dirs(self) -> list[Path]:
        """The `seed-<i>/` folders on disk, in name order ([] for a one-seed trial)."""
        return sorted(self.root.glob("seed-*"))

    def epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """Epoch checkpoints on disk, newest first."""
        found = []
        for path in self.checkpoints.glob("epoch_*.pt"):
            match = re.fullmatch(r"epoch_(\d+)\.pt", path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)


@dataclass(frozen=True)
class FinalLayout:
    """One final model's folder: the retrained weights, their params and their test scores."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.pt"

    @property
    def params(self) -> Path:
        return self.root / "params.json"

    @property
    def test_metrics(self) -> Path:
        return self.root / "test_metrics.json"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    def train(self, seed: int, seeds: int) -> TrialLayout:
        """The retrain's own folder: `train/`, or `train-seed-<i>/` with several seeds."""
        return TrialLayout(self.root / ("train" if seeds == 1 else f"train-seed-{seed}"))


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

    @property
    def split_json(self) -> Path:
        """Rows in each split the study really used (a data set may bring its own split)."""
        return self.root / "split.json"

    @property
    def rounds_lock(self) -> Path:
        return self.root / ".rounds.lock"

    @property
    def cost_timings(self) -> Path:
        """Cost timings the run's trial processes share while `tune` runs (train/shared_costs.py)."""
        return self.root / ".cost_timings"

    @property
    def rounds_log(self) -> Path:
        """One line per round of a batched study: how its trials were packed into groups."""
        return self.root / "rounds.log"

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
    def continued(self) -> Path:
        """Trials trained further (`--continue`, `tunelab continue`), each in a folder linked to its parent."""
        return self.root / "continued"

    def continuation(self, parent: TrialLayout, epochs: int) -> TrialLayout:
        """`continued/<first trial's folder>-to<epochs>ep/`: a chain of continuations keeps its root's name."""
        return TrialLayout(self.continued / f"{re.sub(r'-to[0-9]+ep$', '', parent.root.name)}-to{epochs}ep")

    def continuation_dirs(self) -> list[TrialLayout]:
        """Continuation folders on disk, in name order."""
        if not self.continued.is_dir():
            return []
        return [TrialLayout(p) for p in sorted(self.continued.iterdir()) if p.is_dir()]

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
    def ablation_tables(self) -> Path:
        """An ablation study's per-knob tables (and the combine_winners check), for the report."""
        return self.root / "ablation_tables.json"

    @property
    def combined_winners(self) -> TrialLayout:
        """search.combine_winners: the per-knob winners trained together (seed folders inside)."""
        return TrialLayout(self.root / "combine" / "winners")

    @property
    def optimization_history_seed001(self) -> Path:
        """The same history in seed 001's file shape (search/history_seed001.py)."""
        return self.root / "optimization_history_seed001.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def plot(self, name: str) -> Path:
        """`plots/<name>.png`."""
        return self.plots / f"{name}.png"

    def plot_files(self) -> list[Path]:
        """The plots on disk ([] before the first report)."""
        return sorted(self.plots.glob("*.png")) if self.plots.is_dir() else []

    @property
    def data_checks(self) -> Path:
        """Hygiene checks of the prepared data (`data/checks.py`), written once per run folder."""
        return self.root / "data_checks.json"

    @property
    def decisions_md(self) -> Path:
        return self.root / "decisions.md"

    @property
    def evidence_json(self) -> Path:
        """decisions.md's cards and findings as data, which report.html is rendered from."""
        return self.root / "evidence.json"

    def is_train_run(self) -> bool:
        """Made by `tunelab train` (one configuration, whatever search: block its file has): no study file
        and no optimization history."""
        return not self.study_db.exists() and not self.optimization_history.exists()

    @property
    def preprocessing(self) -> Path:
        """What `predict` needs besides a `tunelab train` run's weights: shapes, scalers, labels, fill values."""
        return self.root / "preprocessing.json"

    @property
    def final(self) -> Path:
        return self.root / "final"

    def final_of(self, trial: int | None = None) -> FinalLayout:
        """The final model's folder: `final/` for the winner, `final/trial-<N>/` for a chosen runner-up."""
        return FinalLayout(self.final if trial is None else self.final / f"trial-{trial}")

    def final_trials(self) -> list[tuple[int, FinalLayout]]:
        """Runner-ups scored with `tunelab final --trial N`, in trial-number order."""
        found = []
        for path in self.final.glob("trial-*"):
            tail = path.name.removeprefix("trial-")
            if path.is_dir() and tail.isdigit():
                found.append((int(tail), FinalLayout(path)))
        return sorted(found, key=lambda pair: pair[0])

    @property
    def test_touches(self) -> Path:
        """How many times the test split was scored in this run folder (every `final`, winner or not)."""
        return self.root / "test_touches.json"

    @property
    def lr_sweep_txt(self) -> Path:
        return self.root / "lr_sweep.txt"

    @property
    def stages_json(self) -> Path:
        return self.root / "stages.json"

    def stage(self, index: int, name: str) -> RunLayout:
        """A staged study's stage `index`: an ordinary run folder `stages/<index>-<name as a folder name>`."""
        return RunLayout(self.stages_dir / f"{index}-{folder_name(name)}")

    @property
    def stages_dir(self) -> Path:
        return self.root / "stages"
