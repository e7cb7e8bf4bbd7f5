"""Tiny synthetic run folders written by hand, so each rule sees exactly the numbers a test names."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml


class RunBuilder:
    """Writes experiment.yaml, trials/<n>-t<n>/{metrics,grad_norms}.jsonl, result.json and the history."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trials: list[dict[str, Any]] = []

    def experiment(
        self,
        *,
        strategy: str = "grid",
        space: dict[str, Any] | None = None,
        metric: str = "val_loss",
        name: str = "synthetic",
        train: dict[str, Any] | None = None,
        pruner: str = "none",
    ) -> RunBuilder:
        exp = {
            "name": name,
            "data": {"name": "toy_2d", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
            "model": {"family": "mlp", "hidden_dims": [8], "dropout": 0.0, "activation": "relu"},
            "train": {"epochs": 10, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "seed": 1,
                      "monitor": "val_loss", "max_grad_norm": None, "early_stopping": {"patience": None},
                      **(train or {})},
            "search": {"strategy": strategy, "space": space or {}, "pruner": pruner,
                       "objective": {"metric": metric, "direction": "auto"}},
        }
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "experiment.yaml").write_text(yaml.safe_dump(exp, sort_keys=False), encoding="utf-8")
        return self

    def trial(
        self,
        number: int,
        *,
        train: Sequence[float | None] | None = None,
        val: Sequence[float | None] | None = None,
        extra: dict[str, Sequence[Any]] | None = None,
        grad_totals: Sequence[float] | None = None,
        layer_norms: Sequence[dict[str, float]] | None = None,
        params: dict[str, Any] | None = None,
        value: float | None = None,
        outcome: str = "complete",
        seed_values: Sequence[float] | None = None,
        state: str | None = None,
        reason: str = "",
        config: dict[str, Any] | None = None,
    ) -> RunBuilder:
        folder = self.root / "trials" / f"{number}-t{number}"
        folder.mkdir(parents=True, exist_ok=True)
        if train is not None or val is not None:
            n = len(train or val or [])
            records = []
            for i in range(n):
                rec: dict[str, Any] = {"epoch": i + 1, "lr": 0.1, "epoch_time_s": 0.01}
                if train is not None:
                    rec["train_loss"] = train[i]
                if val is not None:
                    rec["val_loss"] = val[i]
                for key, values in (extra or {}).items():
                    rec[key] = values[i]
                records.append(rec)
            finite = [(r["val_loss"], r["epoch"]) for r in records if isinstance(r.get("val_loss"), float | int)]
            best_epoch = min(finite)[1] if finite else None
            for rec in records:
                rec["is_best"] = rec["epoch"] == best_epoch
            _jsonl(folder / "metrics.jsonl", records)
            best = next((r for r in records if r["is_best"]), {})
            result = {"state": state or outcome, "reason": reason, "best_epoch": best_epoch, "monitor": "val_loss",
                      "best_record": {k: v for k, v in best.items() if k != "is_best"}}
            (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
        if grad_totals is not None or layer_norms is not None:
            count = len(grad_totals if grad_totals is not None else layer_norms or [])
            rows = []
            for i in range(count):
                norms = layer_norms[i] if layer_norms is not None else {"0.weight": 0.1, "2.weight": 0.1}
                total = grad_totals[i] if grad_totals is not None else sum(v * v for v in norms.values()) ** 0.5
                rows.append({"epoch": i + 1, "norms": norms, "total": total})
            _jsonl(folder / "grad_norms.jsonl", rows)
        full = {"params": params or {}, "config": config or {}}
        (folder / "params.json").write_text(json.dumps(full), encoding="utf-8")
        self.trials.append(
            {
                "number": number,
                "params": params or {},
                "value": value,
                "state": "complete" if outcome == "complete" else "pruned" if outcome == "pruned" else "fail",
                "outcome": outcome,
                "reason": reason,
                "seed_values": list(seed_values) if seed_values is not None else ([] if value is None else [value]),
                "intermediate_values": {},
                "trial_dir": f"trials/{number}-t{number}",
            }
        )
        return self

    def history(self, *, direction: str = "minimize", metric: str = "val_loss") -> RunBuilder:
        done = [t for t in self.trials if t["outcome"] == "complete" and t["value"] is not None]
        pick = max if direction == "maximize" else min
        best = pick(done, key=lambda t: t["value"]) if done else None
        history = {
            "study_name": "synthetic",
            "direction": direction,
            "metric": metric,
            "best_params": best["params"] if best else {},
            "best_value": best["value"] if best else None,
            "best_trial": best["number"] if best else None,
            "n_trials": len(self.trials),
            "trials": self.trials,
        }
        (self.root / "optimization_history.json").write_text(json.dumps(history), encoding="utf-8")
        return self

    def final(self, **metrics: Any) -> RunBuilder:
        (self.root / "final").mkdir(parents=True, exist_ok=True)
        (self.root / "final" / "test_metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        return self


def _jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def build(tmp_path: Path):
    """`build("name")` -> a RunBuilder for a fresh folder under tmp_path."""

    def make(name: str = "run") -> RunBuilder:
        return RunBuilder(tmp_path / name)

    return make
