"""How many queued grid points a process takes for its round (planning.round_size)."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

from optuna.trial import FrozenTrial, TrialState, create_trial

from tunelab.search.planning import round_size

KEYS = [f'{{"model.hidden_dim": 32, "n": {i}}}' for i in range(9)]  # one shape's nine points
SHAPE_OF = dict.fromkeys(KEYS, "mlp 32")
PLAN = SimpleNamespace(points=[{} for _ in KEYS])


def _trial(state: TrialState, key: str, owner: int | None = None) -> FrozenTrial:
    attrs = {"config_key": key}
    if owner is not None:  # claimed: the owner's host and pid are written with its first heartbeat
        attrs.update(host=socket.gethostname(), pid=owner)
    return create_trial(state=state, params={}, distributions={}, user_attrs=attrs)


def _size(trials: list[FrozenTrial], workers: int = 1) -> int:
    return round_size(None, trials, PLAN, 32, len(KEYS), None, 0, workers, SHAPE_OF)  # type: ignore[arg-type]


def test_the_first_process_takes_a_fair_share_of_the_group() -> None:
    waiting = [_trial(TrialState.WAITING, k) for k in KEYS]
    assert _size(waiting, workers=2) == 5


def test_a_trial_taken_but_not_yet_claimed_is_not_one_more_process() -> None:
    """The other process took 5 of the 9 and has claimed 4 so far: this one takes the other 4 (it
    took 3 when the unclaimed trial counted as a third process, and the last point then trained
    alone, a group of one)."""
    other = os.getpid() + 1
    running = [_trial(TrialState.RUNNING, k, owner=other) for k in KEYS[:4]] + [_trial(TrialState.RUNNING, KEYS[4])]
    waiting = [_trial(TrialState.WAITING, k) for k in KEYS[5:]]
    assert _size(running + waiting) == 4


def test_trials_nobody_claimed_yet_still_show_another_process() -> None:
    running = [_trial(TrialState.RUNNING, k) for k in KEYS[:3]]  # taken a moment ago, claims on the way
    waiting = [_trial(TrialState.WAITING, k) for k in KEYS[3:]]
    assert _size(running + waiting) == 5  # half of the group, not all six left


def test_two_other_processes_split_the_group_in_three() -> None:
    running = [_trial(TrialState.RUNNING, KEYS[0], owner=os.getpid() + 1),
               _trial(TrialState.RUNNING, KEYS[1], owner=os.getpid() + 2)]
    waiting = [_trial(TrialState.WAITING, k) for k in KEYS[2:]]
    assert _size(running + waiting) == 3


