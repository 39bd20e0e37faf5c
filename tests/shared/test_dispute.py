"""The dispute fold and the two rates: a table per rule, and the laws by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dispute import (
    MEDIATION_GOAL, OUTCOMES, REASONS, STATUSES, SUCCESS_GOAL, Action, DisputeState,
    available_steps, below_mediation_goal, below_success_goal, dispute_rates, fold_dispute, mask_name,
    mask_parties, mask_phone, take_up_deadline,
)
from shared.hlc import HLC, format_ms, parse_ms
from shared.records import DISPUTE_ACTIONS

WORKER = "0193b5c8-0000-7000-8000-000000000002"
SERVER = "00000000000000aa"
T0 = parse_ms("2026-11-27T08:00:00.000Z")
MINUTE, HOUR = 60_000, 3_600_000
DISPUTE = {"grid": "G-0101", "dispute_kind": "neighbours", "reported_at": "2026-11-27T08:00:00.000Z", "reporter": WORKER}
KIND = {"code": "neighbours", "take_up_hours": 24}


def step(minute: int, action: str, **values) -> Action:
    """A step at T0 + minute; its id sorts with its minute."""
    return Action(f"0193b5c8-0000-7000-9000-{minute:012x}", str(HLC(T0 + minute * MINUTE, 0, SERVER)),
                  {"dispute": "0193b5c8-0000-7000-8000-0000000000ee", "action": action, "actor": WORKER, **values})


def outcome(minute: int, result: str = "settled", **values) -> Action:
    return step(minute, "outcome", outcome=result, **values)


# --- the rules, step by step -------------------------------------------------------------------

@pytest.mark.parametrize("steps, status, result", [
    ([], "reported", None),
    ([step(1, "comment")], "reported", None),
    ([step(1, "accept")], "accepted", None),
    ([step(1, "accept"), step(2, "session")], "mediating", None),
    ([step(1, "session")], "mediating", None),  # a session takes the dispute up too
    ([step(1, "accept"), step(2, "session"), outcome(3)], "concluded", "settled"),
    ([outcome(1, "partly_settled")], "concluded", "partly_settled"),  # mediated on the spot
    ([outcome(1, "not_settled")], "concluded", "not_settled"),
    ([outcome(1, "referred", referred_to="区人民法院")], "concluded", "referred"),
    ([outcome(1, "referred")], "reported", None),  # a referral that names no body does not apply
    ([step(1, "outcome")], "reported", None),  # no outcome given
    ([outcome(1), outcome(2, "not_settled")], "concluded", "settled"),  # concluded is absorbing
    ([outcome(1), step(2, "session"), step(3, "accept")], "concluded", "settled"),
    ([outcome(1), step(2, "follow_up"), step(3, "follow_up")], "concluded", "settled"),
])
def test_each_step_moves_the_status_as_the_table_says(steps, status, result):
    state = fold_dispute(DISPUTE, steps, kind=KIND)
    assert (state.status, state.outcome) == (status, result)


@pytest.mark.parametrize("steps, index, reason", [
    ([step(1, "accept"), step(2, "accept")], 1, "superseded: dispute already taken up"),
    ([outcome(1), step(2, "session")], 1, "superseded: dispute already concluded"),
    ([step(1, "follow_up")], 0, "superseded: no outcome yet to follow up"),
    ([step(1, "outcome")], 0, "refused: gives no outcome"),
    ([outcome(1, "referred")], 0, "refused: a referral names no body"),
    ([step(1, "mediate")], 0, "refused: unknown action"),
    ([Action("x", "not an hlc", {"action": "accept"})], 0, "refused: malformed timestamp"),
])
def test_a_step_that_does_not_apply_stays_in_the_timeline_with_its_reason(steps, index, reason):
    state = fold_dispute(DISPUTE, steps, kind=KIND)
    entry = state.timeline[index]
    assert not entry.applied and entry.reason == reason and reason in REASONS
    assert len(state.timeline) == len(steps)


def test_counts_of_sessions_and_follow_ups_and_the_times_of_taking_up_and_concluding():
    state = fold_dispute(DISPUTE, [step(5, "session", at="2026-11-27T07:59:00.000Z", mediators=["王调解"]),
                                   step(6, "session"), outcome(7), step(8, "follow_up")], kind=KIND)
    assert (state.sessions, state.follow_ups) == (2, 1)
    assert state.taken_up_at == "2026-11-27T07:59:00.000Z"  # the step's own time, where given
    assert state.concluded_at == format_ms(T0 + 7 * MINUTE)
    assert state.timeline[0].mediators == ("王调解",)
    assert state.mediated and state.settled and not state.is_open


@pytest.mark.parametrize("steps, now_hours, overdue, late", [
    ([], 23, False, False),
    ([], 25, True, False),  # not taken up 24 hours after it was reported
    ([step(1, "comment")], 25, True, False),  # a comment takes nothing up
    ([step(1, "accept")], 25, False, False),
    ([step(25 * 60, "accept")], 26, False, True),  # taken up, but late
    ([step(25 * 60, "follow_up")], 26, True, False),  # a follow-up that does not apply takes nothing up
])
def test_overdue_is_not_taken_up_within_the_kinds_hours(steps, now_hours, overdue, late):
    state = fold_dispute(DISPUTE, steps, kind=KIND, now=T0 + now_hours * HOUR)
    assert (state.overdue, state.late) == (overdue, late)
    assert state.deadline == "2026-11-28T08:00:00.000Z"


@pytest.mark.parametrize("dispute, kind", [
    (DISPUTE, None), (DISPUTE, {"take_up_hours": 0}), (DISPUTE, {"take_up_hours": True}),
    ({**DISPUTE, "reported_at": "yesterday"}, KIND), ({}, KIND), (None, KIND),
])
def test_without_hours_or_a_report_time_there_is_no_deadline_and_nothing_is_overdue(dispute, kind):
    state = fold_dispute(dispute, [], kind=kind, now=T0 + 1000 * HOUR)
    assert state.deadline is None and not state.overdue
    assert take_up_deadline(dispute, kind) is None


def test_a_malformed_now_is_the_callers_mistake():
    with pytest.raises(TypeError):
        fold_dispute(DISPUTE, [], now=1.5)


@pytest.mark.parametrize("steps, offered", [
    ([], ("accept", "session", "outcome", "comment")),
    ([step(1, "accept")], ("session", "outcome", "comment")),
    ([step(1, "session")], ("session", "outcome", "comment")),
    ([outcome(1)], ("follow_up", "comment")),
])
def test_the_steps_offered_are_the_ones_the_fold_would_apply(steps, offered):
    assert available_steps(fold_dispute(DISPUTE, steps)) == offered


# --- the laws ------------------------------------------------------------------------------------

ids = st.sampled_from([f"0193b5c8-0000-7000-9000-{n:012x}" for n in range(6)])
steps = st.builds(
    lambda rid, minute, counter, action, result, body, at: Action(
        rid, str(HLC(T0 + minute * MINUTE, counter, SERVER)),
        {"action": action, "actor": WORKER, **({"outcome": result} if result else {}),
         **({"referred_to": body} if body else {}), **({"at": at} if at else {})}),
    ids, st.integers(0, 3000), st.integers(0, 2),
    st.sampled_from([*DISPUTE_ACTIONS, "mediate"]), st.sampled_from([None, *OUTCOMES, "won"]),
    st.sampled_from([None, "法院"]), st.sampled_from([None, "2026-11-27T09:00:00.000Z", "bad"]))
junk = st.one_of(steps, st.builds(Action, st.text(max_size=3), st.text(max_size=5),
                                  st.dictionaries(st.sampled_from(["action", "outcome", "at", "mediators"]),
                                                  st.one_of(st.none(), st.integers(), st.text(max_size=4)))))


@given(st.lists(steps, max_size=12), st.randoms(use_true_random=False), st.integers(0, 3))
def test_the_fold_is_order_free_and_ignores_duplicates(actions, random, copies):
    shuffled = actions + actions[:copies]
    random.shuffle(shuffled)
    assert fold_dispute(DISPUTE, shuffled, kind=KIND, now=T0) == fold_dispute(DISPUTE, actions, kind=KIND, now=T0)


@given(st.lists(junk, max_size=12), st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers())))
def test_the_fold_is_total_and_drops_nothing(actions, kind):
    state = fold_dispute(DISPUTE, actions, kind=kind, now=T0)
    assert state.status in STATUSES
    assert len(state.timeline) == len({getattr(a, "id", None) if isinstance(a.id, str) else repr(a.id)
                                       for a in actions})
    assert all(e.applied == (e.reason is None) for e in state.timeline)


@given(st.lists(steps, max_size=12))
def test_the_fold_is_prefix_stable(actions):
    whole = fold_dispute(DISPUTE, actions, kind=KIND).timeline
    for n in range(len(whole)):
        prefix = [a for a in actions if (a.hlc, a.id) <= (whole[n].hlc, whole[n].action_id)]
        assert fold_dispute(DISPUTE, prefix, kind=KIND).timeline[-1] == whole[n]


@given(st.lists(steps, max_size=12))
def test_concluded_is_absorbing(actions):
    timeline = fold_dispute(DISPUTE, actions, kind=KIND).timeline
    after = False
    for entry in timeline:
        if after:
            assert entry.status == "concluded"
            assert not entry.applied or entry.action in ("follow_up", "comment")
        after = after or entry.status == "concluded"


@given(st.lists(steps, max_size=12))
def test_what_is_offered_applies_and_what_is_not_does_not(actions):
    state = fold_dispute(DISPUTE, actions, kind=KIND)
    later = T0 + 10_000 * MINUTE
    for name in DISPUTE_ACTIONS:
        extra = Action("0193b5c8-0000-7000-9fff-000000000000", str(HLC(later, 0, SERVER)),
                       {"action": name, "actor": WORKER, "outcome": "settled" if name == "outcome" else None})
        applied = fold_dispute(DISPUTE, [*actions, extra], kind=KIND).timeline[-1].applied
        assert applied == (name in available_steps(state))


# --- the two rates -------------------------------------------------------------------------------

def _state(status="reported", outcome=None, sessions=0, overdue=False) -> DisputeState:
    return DisputeState(status=status, outcome=outcome, sessions=sessions, overdue=overdue)


@pytest.mark.parametrize("states, mediation, success", [
    ([], None, None),
    ([_state()], 0.0, None),
    ([_state("accepted")], 0.0, None),  # accepted alone is not mediation
    ([_state("mediating", sessions=1)], 1.0, None),
    ([_state("concluded", "settled")], 1.0, 1.0),  # an outcome reached on the spot is mediation
    ([_state("concluded", "settled", 1), _state("concluded", "partly_settled", 2)], 1.0, 0.5),
    ([_state("concluded", "referred"), _state()], 0.5, 0.0),
    ([_state("concluded", "settled", 1)] * 19 + [_state("concluded", "not_settled", 1)], 1.0, 0.95),
])
def test_the_two_rates_by_their_definitions(states, mediation, success):
    rates = dispute_rates(states)
    assert rates.mediation_rate == mediation and rates.success_rate == success


def test_goals_and_what_is_below_them():
    assert (MEDIATION_GOAL, SUCCESS_GOAL) == (1.0, 0.95)
    assert below_mediation_goal(0.99) and not below_mediation_goal(1.0) and not below_mediation_goal(None)
    assert below_success_goal(0.949) and not below_success_goal(0.95) and not below_success_goal(None)


@given(st.lists(st.lists(steps, max_size=6), max_size=8))
def test_the_rates_are_within_zero_and_one_and_counts_nest(disputes):
    rates = dispute_rates(fold_dispute(DISPUTE, actions, kind=KIND, now=T0 + 100 * HOUR) for actions in disputes)
    assert rates.settled <= rates.concluded <= rates.mediated <= rates.reported == len(disputes)
    for rate in (rates.mediation_rate, rates.success_rate):
        assert rate is None or 0 <= rate <= 1


@settings(max_examples=50)
@given(st.lists(st.lists(steps, max_size=6), max_size=8), st.integers(0, 8))
def test_a_places_rates_are_counted_from_its_parts_not_averaged(disputes, cut):
    states = [fold_dispute(DISPUTE, actions, kind=KIND) for actions in disputes]
    assert dispute_rates(states) == dispute_rates(states[:cut]) + dispute_rates(states[cut:])
    assert dispute_rates(reversed(states)) == dispute_rates(states)


# --- masking ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, masked", [("张伟", "张*"), ("欧阳娜娜", "欧***"), ("李", "李"), ("", ""), (None, "")])
def test_names_are_masked_but_their_first_character(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("phone, masked", [("13812345678", "138****5678"), ("075512345678", "075*****5678"),
                                           ("12345", "***45"), ("", None), (None, None)])
def test_phones_are_masked_in_the_middle(phone, masked):
    assert mask_phone(phone) == masked


def test_parties_are_masked_and_malformed_ones_left_out():
    assert mask_parties([{"name": "张伟", "phone": "13812345678", "role": "申请人"}, "junk", {"phone": 5}]) == [
        {"name": "张*", "phone": "138****5678", "role": "申请人"}, {"name": "*", "phone": None, "role": None}]
    assert mask_parties("sealed:v1:abc") == []
