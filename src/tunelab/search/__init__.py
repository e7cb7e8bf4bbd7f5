"""Searches: strategies map a search section to an Optuna sampler or an explicit list of trials."""
