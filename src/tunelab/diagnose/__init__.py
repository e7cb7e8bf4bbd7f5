"""Diagnosis: rules that read a run folder and say what a careful practitioner would say."""

from tunelab.diagnose.finding import Finding
from tunelab.diagnose.registry import RULES, diagnose_run
from tunelab.diagnose.thresholds import DEFAULT_THRESHOLDS, Thresholds

__all__ = ["DEFAULT_THRESHOLDS", "RULES", "Finding", "Thresholds", "diagnose_run"]
