"""How far a metric measured on n rows moves by chance: the standard errors `val_test_disagree` weighs a gap with.

The run folder keeps each split's metric, not its rows, so the errors come from the value and the row
count under a stated model: binomial for scores in [0, 1] (accuracy, F1, ROC-AUC, ...; rough for the
averaged ones), Gaussian residuals for R² ((1 - R²) * sqrt(2/n), within ~10% of a bootstrap on the
diabetes starter's test predictions) and, for a mean loss or error, per-row values with a known spread,
compared as a log ratio. The selection's optimism (the best of many trials and epochs on validation)
is not in them: the thresholds sit at several standard errors for that reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tunelab.config.vocabulary import higher_is_better, metric_name
from tunelab.diagnose.readings import fmt

# squared coefficient of variation of one row's value in a mean loss or error: squared Gaussian residuals
# (chi-square, 1 df) for mse and the training losses; |e| and sqrt(mean e²) spread less
ROW_CV2: dict[str, float] = {"mae": math.pi / 2 - 1, "rmse": 0.5}
DEFAULT_ROW_CV2 = 2.0


@dataclass(frozen=True)
class Gap:
    """One metric on the two splits, its gap, and the standard error that gap has by chance."""

    metric: str
    val: float
    test: float
    n_val: int
    n_test: int
    retrain_sd: float = 0.0  # the final model's spread over its seeds (final.seeds > 1), else 0

    @property
    def kind(self) -> str:
        """'r2', 'score' (in [0, 1]) or 'loss' (lower is better, compared as a ratio)."""
        name = metric_name(self.metric)
        return "r2" if name == "r2" else "score" if higher_is_better(name) else "loss"

    def se_of(self, value: float, n: int) -> float:
        """The standard error of this metric at `value` on `n` rows (log scale for a loss)."""
        if self.kind == "score":
            p = min(max(value, 0.5 / n), 1 - 0.5 / n)  # a perfect score on n rows still has an error
            return math.sqrt(p * (1 - p) / n)
        if self.kind == "r2":
            return (1 - value) * math.sqrt(2 / n) if value < 1 else 0.0
        return math.sqrt(ROW_CV2.get(metric_name(self.metric), DEFAULT_ROW_CV2) / n)

    @property
    def diff(self) -> float:
        """How much worse test is: a difference for scores and R², log(test / val) for a loss."""
        if self.kind == "loss":
            return math.log(self.test / self.val)
        return self.val - self.test

    @property
    def se(self) -> float:
        """The gap's standard error: both splits' sampling errors and the final model's seed spread."""
        retrain = self.retrain_sd / self.test if self.kind == "loss" else self.retrain_sd
        parts = (self.se_of(self.val, self.n_val), self.se_of(self.test, self.n_test), retrain)
        return math.sqrt(sum(p * p for p in parts))

    @property
    def z(self) -> float:
        """The gap in standard errors (positive: test is worse); inf when chance allows no gap at all."""
        se = self.se
        if se > 0:
            return self.diff / se
        return math.inf if self.diff > 0 else 0.0

    def text(self) -> str:
        """`val_accuracy 0.805 vs test_accuracy 0.6379: 5.4 standard errors (±0.021 on 359 val rows, ...)`."""
        m = metric_name(self.metric)
        head = f"val_{m} {fmt(self.val)} vs test_{m} {fmt(self.test)}"
        how = {"score": "binomial", "r2": "(1-R²)·√(2/n)", "loss": "log ratio"}[self.kind]
        spread = (f"±{fmt(self.se_of(self.val, self.n_val))} on {self.n_val} val rows, "
                  f"±{fmt(self.se_of(self.test, self.n_test))} on {self.n_test} test rows")
        if self.retrain_sd:
            spread += f", ±{fmt(self.retrain_sd)} over the final model's seeds"
        z = "∞" if math.isinf(self.z) else f"{self.z:.1f}"
        return f"{head}: {z} standard errors of chance ({spread}; {how})"


def splits_known(n_val: int | None, n_test: int | None) -> bool:
    """Both row counts recorded and positive: a statistical judgement is possible."""
    return bool(n_val and n_test and n_val > 0 and n_test > 0)
