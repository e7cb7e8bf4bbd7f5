"""A round's parcels: groups cut where the pieces' estimated costs are closest, costliest out first."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from tests.search.test_round_shares import planners

from tunelab.config.space import parse_space
from tunelab.runs.layout import RunLayout
from tunelab.search.round_parcels import Member, cost, parcels
from tunelab.search.rounds import PARCEL_ATTR, SLOT_ATTR, rounds_for


def key(width: int, depth: int) -> str:
    """A group key as `grouping.group_key` writes it (12,000 rows, batch 64, 8 inputs, 1 output)."""
    model = {"family": "mlp", "hidden_dim": width, "num_layers": depth, "activation": "relu"}
    return json.dumps(["d", "hash", 12000, model, {"batch_size": 64}, [8, 1]], sort_keys=True)


def test_a_group_of_mixed_widths_is_cut_where_the_costs_are_closest() -> None:
    """(Of six wide members, three 64-wide and two 32-wide, the closest cut would leave a wide
    member alone beside the narrow ones: the next closest is taken, `test_no_cut_leaves_...`.)"""
    members = [Member("s", key(128, 2), 2900)] * 7 + [Member("s", key(64, 2), 2900)] * 3 \
        + [Member("s", key(32, 2), 2900)] * 2
    got = parcels(members, 2)
    assert sorted(set(got)) == [0, 1]
    pieces = [[m for m, p in zip(members, got, strict=True) if p == n] for n in (0, 1)]
    assert all(len(piece) >= 2 for piece in pieces)
    by_count = max(cost(members[:7]), cost(members[7:]))  # halves by count, as before: 7 wide against 5 narrow
    assert max(cost(piece) for piece in pieces) < 0.95 * by_count
    assert cost(pieces[0]) >= cost(pieces[1])  # parcel 0 goes out first


def test_parcels_go_out_costliest_first_and_lone_members_fill_in() -> None:
    members = [Member("", key(32, 1), 100), Member("g", key(128, 3), 100), Member("g", key(128, 3), 100),
               Member("g", key(128, 3), 100), Member("g", key(128, 3), 100), Member("", key(128, 3), 100)]
    got = parcels(members, 2)
    assert got[1:5].count(got[1]) == 2 and got[1:5].count(got[4]) == 2 and {got[1], got[4]} == {0, 1}
    assert (got[5], got[0]) == (2, 3)  # the wide lone trial before the narrow one
    assert parcels(members, 1)[1:5] == [got[1]] * 4 == [0] * 4  # one process: the group stays whole


def test_processes_pop_whole_parcels_in_order(tmp_path: Path) -> None:
    study, (first, second) = planners(tmp_path, 2, shape="one shape")
    a, b = first.ask(study, 0), second.ask(study, 0)
    assert (len(a), len(b)) == (3, 3)
    parcel_of = {t.number: t.user_attrs[PARCEL_ATTR] for t in study.get_trials()}
    assert {parcel_of[t.number] for t, _ in a} == {0} and {parcel_of[t.number] for t, _ in b} == {1}


def test_numbering_does_not_depend_on_the_processes(tmp_path: Path) -> None:
    """Parcels change who trains what; the trials' numbers, slots and values stay the same."""
    def queued(processes: int) -> list[tuple]:
        study, found = planners(tmp_path / str(processes), processes, shape="one shape")
        found[0].ask(study, 0)
        return [(t.number, t.user_attrs[SLOT_ATTR], t.system_attrs["fixed_params"]) for t in study.get_trials()]

    assert queued(1) == queued(2) == queued(3)


def test_a_study_queued_without_the_processes_attribute_plans_for_the_machine(tmp_path: Path) -> None:
    from tunelab.config.schema import Experiment

    exp = Experiment.model_validate({
        "name": "noattr", "data": {"name": "diabetes"}, "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 3}, "final": {"enabled": False},
        "search": {"strategy": "tpe", "n_trials": 8, "batch_size": 4, "n_jobs": 2,
                   "space": {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True}}},
    })
    study = optuna.create_study()
    planner = rounds_for(study, exp, parse_space(exp), 8, None, RunLayout(tmp_path))
    assert planner is not None
    planner.shape_of = lambda params: "one shape"
    planner.ask(study, 0)  # no process count recorded yet: n_jobs says two
    assert sorted(t.user_attrs[PARCEL_ATTR] for t in study.get_trials()) == [0, 0, 1, 1]


def test_a_parcel_goes_to_whoever_takes_its_first_trial(tmp_path: Path) -> None:
    from tunelab.search.point_queue import take

    study, (first, second) = planners(tmp_path, 2, shape="one shape")
    assert first._queue_round(study, [], 6)
    queued = sorted(study.get_trials(), key=lambda t: t.number)
    parcel0 = [t for t in queued if t.user_attrs[PARCEL_ATTR] == 0]
    assert take(study, parcel0[0]._trial_id)  # another process is taking parcel 0 right now
    got = second.ask(study, 0)
    assert [study.trials[t.number].user_attrs[PARCEL_ATTR] for t, _ in got] == [1, 1, 1]
    assert len(first.ask(study, 0)) == 2  # the rest of parcel 0, had its taker died meanwhile


def test_a_group_is_cut_for_the_shortest_round_with_the_other_parcels() -> None:
    """Six 2-layer members and a trio of 3-layer ones (a trio stays whole): halves of three would
    leave one process with a half and the trio; the cut that evens the two processes out wins."""
    from tunelab.search.round_parcels import _makespan

    six = [Member("a", key(128, 2), 2900)] * 6
    trio = [Member("b", key(128, 3), 2900)] * 3
    got = parcels(six + trio, 2)
    sizes = sorted(got[:6].count(p) for p in set(got[:6]))
    assert sizes != [3, 3]
    units = {p: [m for m, q in zip(six + trio, got, strict=True) if q == p] for p in set(got)}
    halves = [six[:3], six[3:], trio]
    assert _makespan([cost(u) for u in units.values()], 2) < _makespan([cost(u) for u in halves], 2)


def test_no_parcel_is_popped_before_the_whole_round_is_queued() -> None:
    """A process that looks while another is still queueing the round sees part of a parcel; it
    waits for the rest (it once took two of a parcel of six, and the other process the four left)."""
    from optuna.trial import TrialState, create_trial

    from tunelab.search.rounds import ROUND_ATTR, ROUND_SIZE_ATTR, _queued_whole

    def queued(n: int) -> list:
        return [create_trial(state=TrialState.WAITING, user_attrs={ROUND_ATTR: 2, ROUND_SIZE_ATTR: 6})
                for _ in range(n)]

    done = [create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs={ROUND_ATTR: 1, ROUND_SIZE_ATTR: 6})]
    part, whole = queued(3), queued(6)
    assert not _queued_whole(done + part, part)
    assert _queued_whole(done + whole, whole)
    legacy = [create_trial(state=TrialState.WAITING, user_attrs={ROUND_ATTR: 3})]
    assert _queued_whole(legacy, legacy)


def _trained_alone(members: list[Member], processes: int) -> set[int]:
    """The members that a process trains alone once it pops its parcel (`group_run._plan`)."""
    from types import SimpleNamespace

    from tunelab.search.group_run import _plan

    got = parcels(members, processes)
    alone = set()
    for parcel in set(got):
        started = [SimpleNamespace(index=i, key=m.key, seeds=[None]) for i, m in enumerate(members) if got[i] == parcel]
        alone |= {s.index for s in _plan(started, 32)[1]}  # type: ignore[arg-type]
    return alone


@pytest.mark.parametrize("shapes", [
    [(64, 2)] * 3 + [(32, 2)],  # one stack: a 32-wide member pads with three 64-wide ones, not with one
    [(128, 3)] * 4 + [(64, 3), (32, 3)],  # each narrow one stacks with two 128-wide ones, not with each other
])
def test_no_cut_leaves_a_member_of_a_stack_alone_whatever_the_processes(shapes: list[tuple[int, int]]) -> None:
    """Alone, a member trains with `fit`'s lone kernels, whose float32 rounding differs from any
    stack's: a cut that left it alone made its value, and so the study's next rounds, depend on
    the number of processes (3 processes left the 64-wide member of the second round alone)."""
    members = [Member("s", key(w, d), 2900) for w, d in shapes]
    for processes in (1, 2, 3, 4):
        assert _trained_alone(members, processes) == set(), processes
        assert len(set(parcels(members, processes))) <= processes
