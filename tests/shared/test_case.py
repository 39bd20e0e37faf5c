"""The case-status fold: a table per rule, and the fold's laws by hypothesis."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.steps import canonical  # the fold's own tie-break encoding
from shared.case import (
    FAILURES_BEFORE_SUPERVISION, INERT_ACTIONS, REASONS, RESOLUTIONS, STATUSES, Action, CaseState, available_actions,
    awaiting_verification, fold_case, is_overdue, missing_evidence, queue_key,
)
from shared.hlc import HLC, format_ms, parse_ms
from shared.records import CASE_ACTIONS
from shared.roles import ACTIONS_BY_ROLE, ROLES, may_stand_in

REPORTER = "0193b5c8-0000-7000-8000-000000000001"
WORKER = "0193b5c8-0000-7000-8000-000000000002"      # another grid worker
SUPERVISOR = "0193b5c8-0000-7000-8000-000000000003"
UNIT_USER = "0193b5c8-0000-7000-8000-000000000004"
ORIGINAL = "0193b5c8-0000-7000-8000-00000000abcd"    # the event a duplicate points to
TABLET = "9f86d081884c7d65"
SERVER = "00000000000000aa"
T0 = parse_ms("2026-11-27T08:00:00.000Z")
MINUTE, HOUR = 60_000, 3_600_000

EVENT = {"grid": "G-0101", "category": "fire_hazard", "reporter": REPORTER, "urgent": False, "micro": False,
         "reported_at": "2026-11-27T07:55:00.000Z"}
MICRO_EVENT = {**EVENT, "micro": True}
CATEGORY = {"code": "fire_hazard", "deadline_hours": 48}


def at(minute: int) -> str:
    return format_ms(T0 + minute * MINUTE)


def stamp(minute: int, counter: int = 0, node: str = SERVER) -> str:
    return str(HLC(T0 + minute * MINUTE, counter, node))


def act(minute: int, action: str, actor: str = SUPERVISOR, *, node: str = SERVER, **values) -> Action:
    """An action at T0 + minute; its id sorts with its minute, so tables read in time order."""
    return Action(f"0193b5c8-0000-7000-9000-{minute:012x}", stamp(minute, node=node),
                  {"event": "0193b5c8-0000-7000-8000-0000000000ee", "action": action, "actor": actor, **values})


def dispatch(minute, unit="fire", **values):
    return act(minute, "dispatch", SUPERVISOR, unit=unit, **values)


def rectify(minute):
    return act(minute, "rectify", UNIT_USER)


def verify(minute, passed, actor=REPORTER, **values):
    return act(minute, "verify_pass" if passed else "verify_fail", actor, node=TABLET, **values)


def cycles(failures: int, start: int = 10) -> list[Action]:
    """Dispatch at minute 1, then `failures` rounds of rectify and failed verification."""
    actions = [dispatch(1)]
    for i in range(failures):
        actions += [rectify(start + 10 * i), verify(start + 10 * i + 5, False)]
    return actions


def entry(state: CaseState, action_id: str):
    [found] = [e for e in state.timeline if e.action_id == action_id]
    return found


# --- the case loop, step by step --------------------------------------------------------------

@pytest.mark.parametrize("actions, status, resolution", [
    ([], "reported", None),
    ([act(1, "comment")], "reported", None),
    ([dispatch(1)], "dispatched", None),
    ([dispatch(1), rectify(2)], "rectified", None),
    ([dispatch(1), rectify(2), verify(3, True)], "closed", "verified"),
    ([dispatch(1), rectify(2), verify(3, False)], "returned", None),
    ([dispatch(1), rectify(2), verify(3, False), rectify(4)], "rectified", None),
    ([dispatch(1), rectify(2), verify(3, False), rectify(4), verify(5, True)], "closed", "verified"),
    ([dispatch(1), rectify(2), act(3, "return")], "returned", None),
    ([dispatch(1), rectify(2), act(3, "return"), rectify(4)], "rectified", None),
    ([act(1, "close")], "closed", "closed"),
    ([dispatch(1), rectify(2), act(3, "close")], "closed", "closed"),
    ([dispatch(1), act(2, "mark_duplicate", note=f"same as {ORIGINAL}")], "closed", "duplicate"),
    ([dispatch(1), rectify(2), verify(3, False), dispatch(4, unit="team")], "dispatched", None),
], ids=lambda v: "-".join(a.values["action"] for a in v) if isinstance(v, list) else None)
def test_each_step_moves_the_case_along_the_loop(actions, status, resolution):
    state = fold_case(EVENT, actions)
    assert (state.status, state.resolution) == (status, resolution)
    assert all(e.applied for e in state.timeline)
    assert state.closed_at == (state.timeline[-1].hlc[:24] if status == "closed" else None)


def test_dispatch_sets_the_unit_and_a_second_dispatch_reassigns_it():
    state = fold_case(EVENT, [dispatch(1, unit="fire", deadline=at(600)), dispatch(2, unit="team")],
                      category=CATEGORY)
    assert (state.status, state.unit) == ("dispatched", "team")
    assert state.deadline == format_ms(T0 + 2 * MINUTE + 48 * HOUR)


@pytest.mark.parametrize("note, duplicate_of", [
    (ORIGINAL, ORIGINAL),
    (f"same hydrant as {ORIGINAL.upper()} yesterday", ORIGINAL),
    ("same as the one reported yesterday", None),
    (None, None),
])
def test_mark_duplicate_closes_and_takes_the_original_from_the_note(note, duplicate_of):
    state = fold_case(EVENT, [act(1, "mark_duplicate", note=note)])
    assert (state.status, state.resolution, state.duplicate_of) == ("closed", "duplicate", duplicate_of)


# --- actions that no longer apply -------------------------------------------------------------

CLOSED = "superseded: case already closed"


@pytest.mark.parametrize("before, late, reason", [
    ([], rectify(9), "superseded: case not dispatched yet"),
    ([], act(9, "return"), "superseded: case not dispatched yet"),
    ([], act(9, "extend", deadline=at(999)), "superseded: case not dispatched yet"),
    ([dispatch(1)], verify(9, True), "superseded: case not rectified yet"),
    ([dispatch(1)], act(9, "return"), "superseded: case not rectified yet"),
    ([dispatch(1), rectify(2)], rectify(9), "superseded: case already rectified, awaiting verification"),
    ([dispatch(1), rectify(2)], dispatch(9, unit="team"), "superseded: case already rectified, awaiting verification"),
    ([dispatch(1), rectify(2), verify(3, False)], verify(9, False), "superseded: case returned, not rectified again yet"),
    ([dispatch(1), rectify(2), verify(3, True)], rectify(9), CLOSED),
    ([dispatch(1), rectify(2), verify(3, True)], verify(9, False), CLOSED),
    ([act(1, "close")], dispatch(9), CLOSED),
    ([act(1, "close")], act(9, "close"), CLOSED),
    ([act(1, "close")], act(9, "supervise"), CLOSED),
    ([act(1, "close")], act(9, "mark_duplicate", note=ORIGINAL), CLOSED),
    ([dispatch(1), act(2, "mark_duplicate")], act(9, "extend", deadline=at(999)), CLOSED),
    ([dispatch(1), rectify(2)], verify(9, True, actor=WORKER), "refused: only the reporter, or a supervisor standing in, verifies"),
    ([dispatch(1), rectify(2)], verify(9, True, actor=SUPERVISOR), "refused: only the reporter, or a supervisor standing in, verifies"),
    ([], dispatch(9, unit=None), "refused: dispatch names no unit"),
    ([dispatch(1)], act(9, "extend"), "refused: extend gives no deadline"),
    ([dispatch(1)], act(9, "extend", deadline="next tuesday"), "refused: extend gives no deadline"),
    ([], act(9, "handle_on_spot", REPORTER), "refused: not a micro event"),
    ([], act(9, "reopen"), "refused: unknown action"),
    ([], Action("0193b5c8-0000-7000-9000-000000000009", "yesterday", {"action": "close"}), "refused: malformed timestamp"),
])
def test_an_action_that_no_longer_applies_stays_in_the_timeline_and_changes_nothing(before, late, reason):
    expected = fold_case(EVENT, before, category=CATEGORY)
    state = fold_case(EVENT, [*before, late], category=CATEGORY)
    late_entry = entry(state, late.id)
    assert (late_entry.applied, late_entry.reason) == (False, reason)
    assert late_entry.status == expected.status
    assert replace(state, timeline=()) == replace(expected, timeline=())
    assert len(state.timeline) == len(before) + 1


@pytest.mark.parametrize("name", CASE_ACTIONS)
def test_every_case_action_of_the_record_kind_has_a_rule(name):
    state = fold_case(EVENT, [act(1, name)])
    assert state.timeline[-1].reason != "refused: unknown action"


def test_a_comment_applies_even_on_a_closed_case_and_changes_nothing():
    state = fold_case(EVENT, [act(1, "close"), act(2, "comment", WORKER, note="still leaking")])
    assert entry(state, act(2, "comment").id).applied
    assert (state.status, state.resolution) == ("closed", "closed")


def test_offline_verification_before_an_office_close_applies_and_after_it_is_superseded():
    """A worker verifies offline while a supervisor closes the case: HLC order decides, and both stay."""
    office_close = act(20, "close")
    early = verify(15, False)
    late = verify(25, False)
    state = fold_case(EVENT, [dispatch(1), rectify(10), office_close, early])
    assert state.failed_verifications == 1 and state.status == "closed"
    assert entry(state, office_close.id).applied
    state = fold_case(EVENT, [late, office_close, rectify(10), dispatch(1)])
    assert state.failed_verifications == 0 and state.status == "closed"
    assert entry(state, late.id).reason == CLOSED


# --- failed verifications and supervision (督办) -----------------------------------------------

@pytest.mark.parametrize("failures", [0, 1, 2, 3, 4, 5, 6])
def test_more_than_three_failed_verifications_flag_the_unit_and_put_the_case_under_supervision(failures):
    state = fold_case(EVENT, cycles(failures), category=CATEGORY)
    assert state.failed_verifications == failures
    assert state.status == ("returned" if failures else "dispatched")
    triggered = failures > FAILURES_BEFORE_SUPERVISION
    assert (state.supervised, state.assessment_flag) == (triggered, triggered)
    assert state.assessment_unit == ("fire" if triggered else None)


def test_exactly_the_fourth_failure_sets_the_supervision_deadline_from_the_category():
    third = fold_case(EVENT, cycles(3), category=CATEGORY)
    assert third.deadline == format_ms(T0 + 1 * MINUTE + 48 * HOUR)  # the dispatch deadline, untouched
    fourth = fold_case(EVENT, cycles(4), category=CATEGORY)
    fourth_fail_minute = 10 + 10 * 3 + 5
    assert fourth.deadline == format_ms(T0 + fourth_fail_minute * MINUTE + 48 * HOUR)
    fifth = fold_case(EVENT, cycles(5), category=CATEGORY)
    assert fifth.deadline == fourth.deadline
    assert fifth.supervised and fifth.assessment_flag


def test_the_fourth_failure_takes_its_own_deadline_when_it_carries_one():
    actions = cycles(3) + [rectify(100), verify(105, False, deadline=at(2000))]
    state = fold_case(EVENT, actions, category=CATEGORY)
    assert (state.supervised, state.deadline) == (True, at(2000))


def test_the_fourth_failure_keeps_the_old_deadline_without_a_category():
    state = fold_case(EVENT, [dispatch(1, deadline=at(500))] + cycles(4)[1:])
    assert (state.supervised, state.deadline) == (True, at(500))


def test_a_failure_under_supervision_changes_the_deadline_only_when_it_carries_one():
    state = fold_case(EVENT, cycles(2) + [rectify(100), verify(105, False, deadline=at(900))], category=CATEGORY)
    assert (state.failed_verifications, state.supervised, state.deadline) == (3, False, at(900))


def test_failures_are_counted_per_action_id_so_a_replayed_push_counts_once():
    actions = cycles(3)
    state = fold_case(EVENT, actions + actions[-2:] + actions)
    assert (state.failed_verifications, state.supervised) == (3, False)


def test_a_supervisor_return_is_not_a_failed_verification():
    actions = [dispatch(1)]
    for i in range(5):
        actions += [rectify(10 + 10 * i), act(15 + 10 * i, "return")]
    state = fold_case(EVENT, actions)
    assert (state.status, state.failed_verifications, state.supervised) == ("returned", 0, False)


def test_the_assessment_names_the_unit_that_held_the_case_at_the_fourth_failure():
    actions = cycles(4) + [dispatch(200, unit="team")]
    state = fold_case(EVENT, actions)
    assert (state.unit, state.assessment_unit) == ("team", "fire")


@pytest.mark.parametrize("status_actions", [[], [dispatch(1)], [dispatch(1), rectify(2)]])
def test_supervise_puts_an_open_case_under_supervision_without_an_assessment(status_actions):
    state = fold_case(EVENT, [*status_actions, act(9, "supervise", deadline=at(300))])
    assert (state.supervised, state.assessment_flag, state.deadline) == (True, False, at(300))
    assert state.status == fold_case(EVENT, status_actions).status


def test_supervise_without_a_deadline_takes_the_category_hours_from_its_own_time():
    state = fold_case(EVENT, [dispatch(1, deadline=at(100)), act(50, "supervise")], category=CATEGORY)
    assert state.deadline == format_ms(T0 + 50 * MINUTE + 48 * HOUR)
    state = fold_case(EVENT, [dispatch(1, deadline=at(100)), act(50, "supervise")])
    assert state.deadline == at(100)


# --- micro events and stand-ins ---------------------------------------------------------------

@pytest.mark.parametrize("event, actions, applied, reason", [
    (MICRO_EVENT, [act(1, "handle_on_spot", REPORTER, node=TABLET)], True, None),
    (MICRO_EVENT, [act(1, "handle_on_spot", WORKER, node=TABLET)], False,
     "refused: only the reporter handles a micro event on the spot"),
    (MICRO_EVENT, [dispatch(1), act(2, "handle_on_spot", REPORTER)], False, "superseded: case already dispatched"),
    (EVENT, [act(1, "handle_on_spot", REPORTER)], False, "refused: not a micro event"),
    ({**EVENT, "micro": "yes"}, [act(1, "handle_on_spot", REPORTER)], False, "refused: not a micro event"),
])
def test_a_micro_event_is_closed_on_the_spot_by_its_reporter(event, actions, applied, reason):
    state = fold_case(event, actions)
    last = state.timeline[-1]
    assert (last.applied, last.reason) == (applied, reason)
    assert (state.status == "closed") == applied
    if applied:
        assert (state.resolution, state.unit, state.micro) == ("handled_on_spot", None, True)


def test_a_micro_event_can_still_go_the_long_way_when_the_party_refuses():
    state = fold_case(MICRO_EVENT, [dispatch(1, unit="team"), rectify(2), verify(3, True)])
    assert (state.status, state.resolution) == ("closed", "verified")


@pytest.mark.parametrize("passed", [True, False])
def test_a_supervisor_standing_in_verifies_and_the_timeline_says_so(passed):
    stand_in = verify(9, passed, actor=SUPERVISOR, stand_in=True)
    state = fold_case(EVENT, [dispatch(1), rectify(2), stand_in])
    assert state.status == ("closed" if passed else "returned")
    assert state.failed_verifications == (0 if passed else 1)
    stand_in_entry = entry(state, stand_in.id)
    assert (stand_in_entry.applied, stand_in_entry.stand_in, stand_in_entry.actor) == (True, True, SUPERVISOR)


def test_the_reporter_is_never_marked_as_standing_in():
    state = fold_case(EVENT, [dispatch(1), rectify(2), verify(3, True, stand_in=True)])
    assert state.timeline[-1].applied and not state.timeline[-1].stand_in


def test_without_a_reporter_only_a_stand_in_verifies():
    event = {**EVENT, "reporter": None}
    state = fold_case(event, [dispatch(1), rectify(2), verify(3, True, actor=None)])
    assert state.status == "rectified"
    state = fold_case(event, [dispatch(1), rectify(2), verify(3, True, actor=SUPERVISOR, stand_in=True)])
    assert state.status == "closed"


# --- deadlines and overdue --------------------------------------------------------------------

@pytest.mark.parametrize("action, category, deadline", [
    (dispatch(10, deadline=at(600)), CATEGORY, at(600)),
    (dispatch(10, deadline="2026-12-01T00:00:00.5Z"), None, "2026-12-01T00:00:00.500Z"),
    (dispatch(10), CATEGORY, format_ms(T0 + 10 * MINUTE + 48 * HOUR)),
    (dispatch(10), {"deadline_hours": 2}, at(130)),
    (dispatch(10), None, None),
    (dispatch(10), {"deadline_hours": "48"}, None),
    (dispatch(10, deadline="soon"), None, None),
    (dispatch(10, deadline="0001-01-01T00:00:00.000Z"), None, None),
    (dispatch(10, deadline="1969-12-31T23:59:59.999Z"), None, None),
    (dispatch(10, deadline="9999-12-31T23:59:59.999Z"), None, "9999-12-31T23:59:59.999Z"),
    (dispatch(10), {"deadline_hours": 10**12}, None),
])
def test_the_dispatch_deadline_is_given_or_follows_from_the_category(action, category, deadline):
    assert fold_case(EVENT, [action], category=category).deadline == deadline


@pytest.mark.parametrize("before", [[dispatch(1)], [dispatch(1), rectify(2)],
                                    [dispatch(1), rectify(2), verify(3, False)]])
def test_extend_sets_a_new_deadline_and_keeps_the_status(before):
    state = fold_case(EVENT, [*before, act(9, "extend", deadline=at(5000))], category=CATEGORY)
    assert state.deadline == at(5000)
    assert state.status == fold_case(EVENT, before).status


@pytest.mark.parametrize("actions, now, overdue", [
    ([dispatch(1, deadline=at(60))], T0 + 59 * MINUTE, False),
    ([dispatch(1, deadline=at(60))], T0 + 60 * MINUTE, False),
    ([dispatch(1, deadline=at(60))], T0 + 60 * MINUTE + 1, True),
    ([dispatch(1, deadline=at(60))], at(61), True),
    ([dispatch(1, deadline=at(60)), rectify(2)], at(61), True),
    ([dispatch(1, deadline=at(60)), act(50, "extend", deadline=at(120))], at(61), False),
    ([dispatch(1, deadline=at(60)), act(2, "close")], at(61), False),
    ([dispatch(1)], at(100_000), False),
    ([], at(100_000), False),
    ([dispatch(1, deadline=at(60))], None, False),
])
def test_an_open_case_past_its_deadline_is_overdue(actions, now, overdue):
    state = fold_case(EVENT, actions, now_ms=now)
    assert state.overdue is overdue
    if now is not None:
        assert is_overdue(state, now) is overdue


def test_a_malformed_now_is_the_callers_mistake():
    with pytest.raises(ValueError):
        fold_case(EVENT, [], now_ms="tomorrow")
    with pytest.raises(TypeError):
        fold_case(EVENT, [], now_ms=1.5)


# --- queues -----------------------------------------------------------------------------------

def test_the_queue_puts_urgent_first_then_the_earliest_deadline_and_cases_without_one_last():
    def case(name, urgent, deadline, reported_at="2026-11-27T07:00:00.000Z"):
        event = {**EVENT, "urgent": urgent, "reported_at": reported_at, "name": name}
        actions = [dispatch(1, deadline=deadline)] if deadline else []
        return fold_case(event, actions), event

    cases = [
        case("late, no deadline", False, None),
        case("calm, far", False, at(900)),
        case("urgent, no deadline", True, None),
        case("calm, near", False, at(100)),
        case("urgent, far", True, at(900)),
        case("calm, near, reported earlier", False, at(100), "2026-11-27T06:00:00.0Z"),
    ]
    ordered = sorted(cases, key=lambda pair: queue_key(*pair))
    assert [event["name"] for _, event in ordered] == [
        "urgent, far", "urgent, no deadline", "calm, near, reported earlier", "calm, near", "calm, far",
        "late, no deadline",
    ]


@pytest.mark.parametrize("actions, user, waiting", [
    ([dispatch(1), rectify(2)], REPORTER, True),
    ([dispatch(1), rectify(2)], WORKER, False),
    ([dispatch(1)], REPORTER, False),
    ([dispatch(1), rectify(2), verify(3, True)], REPORTER, False),
    ([dispatch(1), rectify(2)], "", False),
])
def test_a_rectified_case_awaits_its_reporters_verification(actions, user, waiting):
    assert awaiting_verification(fold_case(EVENT, actions), EVENT, user) is waiting


# --- reading records --------------------------------------------------------------------------

def test_an_action_is_read_from_a_stored_record_state():
    state = {"event": ["e", stamp(5)], "action": ["rectify", stamp(5)], "actor": [UNIT_USER, stamp(5)],
             "note": ["fixed", stamp(4)]}
    action = Action.from_state("0193b5c8-0000-7000-9000-000000000005", state)
    assert action.hlc == stamp(5)
    assert action.values == {"event": "e", "action": "rectify", "actor": UNIT_USER, "note": "fixed"}
    assert Action.from_state("x", {"note": ("n", stamp(2)), "actor": (WORKER, stamp(3))}).hlc == stamp(2)


def test_actions_with_equal_timestamps_are_ordered_by_id():
    a = Action("b", stamp(1), {"action": "close", "actor": SUPERVISOR})
    b = Action("a", stamp(1), {"action": "dispatch", "actor": SUPERVISOR, "unit": "fire"})
    state = fold_case(EVENT, [a, b])
    assert [e.action_id for e in state.timeline] == ["a", "b"]
    assert (state.status, state.resolution, state.unit) == ("closed", "closed", "fire")


@pytest.mark.parametrize("garbage", [
    Action(None, None, None),
    Action("x", stamp(1), {"action": None, "actor": 7}),
    Action("x", stamp(1), {"action": "dispatch", "unit": ["fire"], "deadline": 12}),
    Action("x", stamp(1), {"action": "verify_pass", "stand_in": "true"}),
    Action(3, 4, "values"),
    object(),
])
def test_garbage_actions_are_refused_never_raised(garbage):
    state = fold_case(None, [garbage], category={"deadline_hours": True}, now_ms=at(1))
    assert len(state.timeline) == 1 and state.status == "reported"


# --- the unit's side: sending back, asking for more time -------------------------------------

def send_back(minute, note="not our street"):
    return act(minute, "send_back", UNIT_USER, note=note)


def ask(minute, deadline_minute, note="waiting for parts"):
    return act(minute, "request_extension", UNIT_USER, note=note, deadline=at(deadline_minute))


def test_a_unit_sends_a_wrongly_dispatched_case_back_to_the_supervisors_queue():
    state = fold_case(EVENT, [dispatch(1, deadline=at(600)), send_back(2)], category=CATEGORY)
    assert (state.status, state.unit, state.deadline, state.sent_back) == ("reported", None, None, 1)
    assert state.failed_verifications == 0 and not state.assessment_flag  # counts against no one
    again = fold_case(EVENT, [dispatch(1), send_back(2), dispatch(3, unit="team", deadline=at(700))])
    assert (again.status, again.unit, again.deadline) == ("dispatched", "team", at(700))


@pytest.mark.parametrize("before, note, reason", [
    ([dispatch(1)], None, "refused: gives no reason"),
    ([], "why", "superseded: case not dispatched yet"),
    ([dispatch(1), rectify(2)], "why", "superseded: case already rectified, awaiting verification"),
    ([dispatch(1), rectify(2), verify(3, False)], "why", "superseded: case returned, not rectified again yet"),
])
def test_a_case_is_sent_back_only_while_dispatched_and_with_a_reason(before, note, reason):
    late = act(50, "send_back", UNIT_USER, note=note)
    assert entry(fold_case(EVENT, [*before, late]), late.id).reason == reason


def test_an_extension_moves_the_deadline_only_when_granted_and_is_counted():
    asked = fold_case(EVENT, [dispatch(1, deadline=at(600)), ask(2, 900)])
    assert (asked.deadline, asked.extension_asked, asked.extensions) == (at(600), at(900), 0)
    granted = fold_case(EVENT, [dispatch(1, deadline=at(600)), ask(2, 900), act(3, "grant_extension")])
    assert (granted.deadline, granted.extension_asked, granted.extensions) == (at(900), None, 1)
    refused = fold_case(EVENT, [dispatch(1, deadline=at(600)), ask(2, 900), act(3, "refuse_extension")])
    assert (refused.deadline, refused.extension_asked, refused.extensions) == (at(600), None, 0)
    # The supervisor may grant another deadline than the one asked for.
    other = fold_case(EVENT, [dispatch(1, deadline=at(600)), ask(2, 900),
                              act(3, "grant_extension", deadline=at(800))])
    assert (other.deadline, other.extensions) == (at(800), 1)


def test_a_supervisors_own_extension_counts_and_answers_a_pending_request():
    state = fold_case(EVENT, [dispatch(1, deadline=at(600)), ask(2, 900), act(3, "extend", deadline=at(700))])
    assert (state.deadline, state.extension_asked, state.extensions) == (at(700), None, 1)


@pytest.mark.parametrize("before, late, reason", [
    ([dispatch(1, deadline=at(600))], ask(5, 500), "refused: the deadline asked for is not later than the one in force"),
    ([dispatch(1, deadline=at(600))], act(5, "request_extension", UNIT_USER, deadline=at(900)),
     "refused: gives no reason"),
    ([dispatch(1, deadline=at(600))], act(5, "request_extension", UNIT_USER, note="x"), "refused: extend gives no deadline"),
    ([dispatch(1)], act(5, "grant_extension"), "superseded: no extension asked for"),
    ([dispatch(1), ask(2, 900), act(3, "refuse_extension")], act(5, "grant_extension"),
     "superseded: no extension asked for"),
    ([dispatch(1), ask(2, 900), dispatch(3, unit="team")], act(5, "grant_extension"),
     "superseded: no extension asked for"),  # a re-dispatch drops the other unit's request
    ([], ask(5, 900), "superseded: case not dispatched yet"),
])
def test_an_extension_is_asked_and_answered_only_where_it_makes_sense(before, late, reason):
    assert entry(fold_case(EVENT, [*before, late]), late.id).reason == reason


def test_an_urgent_event_gets_its_categorys_urgent_deadline():
    category = {**CATEGORY, "urgent_deadline_hours": 4}
    urgent = fold_case({**EVENT, "urgent": True}, [dispatch(0)], category=category)
    normal = fold_case(EVENT, [dispatch(0)], category=category)
    assert urgent.deadline == at(4 * 60) and normal.deadline == at(48 * 60)
    # A category without urgent hours gives an urgent event the normal ones.
    assert fold_case({**EVENT, "urgent": True}, [dispatch(0)], category=CATEGORY).deadline == at(48 * 60)


@pytest.mark.parametrize("values, missing", [
    ({"action": "close"}, ("note",)),
    ({"action": "close", "note": "done"}, ()),
    ({"action": "handle_on_spot", "note": "moved it"}, ("photos",)),
    ({"action": "handle_on_spot", "note": "", "photos": []}, ("note", "photos")),
    ({"action": "request_extension", "note": "rain"}, ("deadline",)),
    ({"action": "send_back"}, ("note",)),
    ({"action": "comment"}, ()),
    ({"action": 3}, ()),
])
def test_the_evidence_an_action_must_carry(values, missing):
    assert missing_evidence(values) == missing


# --- the laws ---------------------------------------------------------------------------------

ACTORS = [REPORTER, WORKER, SUPERVISOR, UNIT_USER, None]
hlcs = st.one_of(
    st.builds(HLC, st.integers(T0, T0 + 20 * MINUTE), st.integers(0, 2), st.sampled_from([TABLET, SERVER])).map(str),
    st.just("not an hlc"),
)
deadlines = st.one_of(st.none(), st.integers(T0, T0 + 100 * HOUR).map(format_ms),
                      st.sampled_from(["garbage", "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]))
action_values = st.fixed_dictionaries({
    # Weighted towards the loop so that long runs (and the fourth failure) happen.
    "action": st.one_of(st.sampled_from(CASE_ACTIONS),
                        st.sampled_from(["dispatch", "rectify", "verify_fail", "verify_fail"]),
                        st.just("reopen")),
    "actor": st.sampled_from(ACTORS),
    "unit": st.sampled_from([None, "fire", "team"]),
    "deadline": deadlines,
    "note": st.sampled_from([None, "", "done", f"dup of {ORIGINAL}"]),
    "stand_in": st.booleans(),
})
ids = st.integers(0, 10_000).map(lambda n: f"0193b5c8-0000-7000-9000-{n:012x}")
noise = st.lists(st.builds(Action, ids, hlcs, action_values), max_size=30, unique_by=lambda a: a.id)
# Mostly the loop itself, by the people who take each step, in nearly increasing time, so that long
# runs (and the fourth failure) are common; a few steps are stamped out of order, as offline ones are.
LOOP = (["dispatch"] + ["rectify"] * 6 + ["verify_fail"] * 6
        + ["return", "extend", "comment", "supervise", "send_back", "request_extension", "grant_extension",
           "refuse_extension"])
RARE = ["verify_pass", "handle_on_spot", "close", "mark_duplicate", "reopen"]


DOER = {"rectify": UNIT_USER, "verify_fail": REPORTER, "verify_pass": REPORTER, "handle_on_spot": REPORTER,
        "send_back": UNIT_USER, "request_extension": UNIT_USER}


@st.composite
def runs(draw):
    actions, minute = [], 0
    for n in range(draw(st.integers(0, 40) | st.sampled_from(range(20, 40)))):
        # One draw picks the step, the gap, and whether actor and stamp are the usual ones.
        roll = draw(st.integers(0, 2**16 - 1))
        if n == 0:
            name = "dispatch"
        elif roll % 21 == 0:
            name = draw(st.sampled_from(RARE))
        else:
            name = LOOP[(roll >> 5) % len(LOOP)]
        actor = draw(st.sampled_from(ACTORS)) if roll % 9 == 1 else DOER.get(name, SUPERVISOR)
        minute += (roll >> 10) % 4
        hlc = draw(hlcs) if roll % 11 == 2 else stamp(minute, (roll >> 12) % 2)
        values = {"action": name, "actor": actor, "unit": "fire" if roll % 5 else "team"}
        if name in ("send_back", "request_extension") and roll % 3:
            values.update(note="not ours", deadline=format_ms(T0 + (minute + 600 + roll % 500) * MINUTE))
        if roll % 7 == 3:
            values.update(deadline=draw(deadlines), note=f"dup of {ORIGINAL}", stand_in=True)
        actions.append(Action(f"0193b5c8-0000-7000-9000-{n:012x}", hlc, values))
    return actions


actions_st = st.one_of(noise, runs())
events = st.fixed_dictionaries({"reporter": st.sampled_from([REPORTER, None]), "urgent": st.booleans(),
                                "micro": st.booleans()})
categories = st.one_of(st.none(), st.fixed_dictionaries(
    {"deadline_hours": st.integers(1, 200) | st.just(10**12)},
    optional={"urgent_deadline_hours": st.integers(1, 24) | st.just(None) | st.just("2")}))
nows = st.one_of(st.none(), st.integers(T0, T0 + 200 * HOUR))


@given(events, actions_st, categories, nows)
def test_the_fold_is_total_and_accounts_for_every_action(event, actions, category, now):
    state = fold_case(event, actions, category=category, now_ms=now)
    assert sorted(e.action_id for e in state.timeline) == sorted(a.id for a in actions)
    assert state.status in STATUSES
    assert state.status == (state.timeline[-1].status if state.timeline else "reported")
    applied = [e for e in state.timeline if e.applied]
    assert state.failed_verifications == sum(e.action == "verify_fail" for e in applied)
    assert state.assessment_flag == (state.failed_verifications > FAILURES_BEFORE_SUPERVISION)
    assert state.supervised == (state.assessment_flag or any(e.action == "supervise" for e in applied))
    assert all(e.reason is None for e in applied)
    assert all(e.reason in REASONS for e in state.timeline if not e.applied)
    assert (state.resolution in RESOLUTIONS) == (state.status == "closed") == (state.closed_at is not None)
    assert state.overdue == (now is not None and is_overdue(state, now))
    for e in applied:
        if e.action in ("verify_pass", "verify_fail", "handle_on_spot"):
            assert e.actor == event["reporter"] or e.stand_in


@given(events, actions_st, categories)
def test_closed_is_absorbing(event, actions, category):
    timeline = fold_case(event, actions, category=category).timeline
    closing = next((i for i, e in enumerate(timeline) if e.status == "closed"), len(timeline))
    for e in timeline[closing + 1:]:
        assert e.status == "closed"
        assert not e.applied or e.action == "comment"


@given(events, actions_st, categories, nows, st.data())
def test_the_fold_is_the_same_for_every_order_of_the_actions(event, actions, category, now, data):
    shuffled = data.draw(st.permutations(actions))
    assert fold_case(event, shuffled, category=category, now_ms=now) == \
        fold_case(event, actions, category=category, now_ms=now)


@given(events, actions_st, categories, st.data())
def test_duplicates_of_an_action_change_nothing(event, actions, category, data):
    repeated = data.draw(st.lists(st.sampled_from(actions), max_size=10)) if actions else []
    mixed = data.draw(st.permutations(actions + repeated))
    assert fold_case(event, mixed, category=category) == fold_case(event, actions, category=category)


@given(events, actions_st, action_values, hlcs, st.data())
def test_two_different_actions_under_one_id_fold_the_same_in_either_order(event, actions, values, hlc, data):
    if not actions:
        return
    twin = Action(data.draw(st.sampled_from(actions)).id, hlc, values)
    first = fold_case(event, data.draw(st.permutations([*actions, twin])))
    second = fold_case(event, [twin, *reversed(actions)])
    assert first == second
    assert len(first.timeline) == len(actions)


@given(events, actions_st, categories, st.data())
def test_a_later_action_never_changes_how_an_earlier_one_was_judged(event, actions, category, data):
    # One action per id, the one the fold keeps (the smaller (hlc, values)): a prefix that held the
    # other copy of a duplicated id would be judging a different history.
    kept = {}
    for action in sorted(actions, key=lambda a: (a.hlc, canonical(a.values)), reverse=True):
        kept[action.id] = action
    ordered = sorted(kept.values(), key=lambda a: (a.hlc, a.id))
    k = data.draw(st.integers(0, len(ordered)))
    whole = fold_case(event, ordered, category=category)
    prefix = fold_case(event, ordered[:k], category=category)
    assert prefix.timeline == whole.timeline[:k]


def test_mark_duplicate_names_the_original_from_its_field():
    """The duplicate_of field wins over a UUID mentioned in the note."""
    original, mentioned = "0193b5c8-0000-7000-8000-000000000001", "0193b5c8-0000-7000-8000-000000000002"
    event = {"reporter": "r", "reported_at": "2026-11-27T00:00:00.000Z"}
    action = Action("a1", "2026-11-27T01:00:00.000Z-0000-" + "a" * 16,
                    {"action": "mark_duplicate", "actor": "s", "duplicate_of": original, "note": f"see {mentioned}"})
    state = fold_case(event, [action])
    assert state.status == "closed" and state.duplicate_of == original


# --- which actions a case offers: exactly those the fold would apply ------------------------------

LATE = T0 + 10_000 * HOUR  # after every action the strategies make, so a candidate folds last


@given(events, actions_st, categories, st.sampled_from(ROLES), st.sampled_from(ACTORS))
def test_an_action_is_offered_if_and_only_if_folding_it_in_would_apply_it(event, actions, category, role, actor):
    """available_actions dry-runs the fold; folding the well-formed action in, last, says the same."""
    state = fold_case(event, actions, category=category)
    offered = available_actions(state, role, actor=actor, reporter=event["reporter"])
    assert set(offered) <= ACTIONS_BY_ROLE[role]  # never what the role may not push
    for name in sorted(ACTIONS_BY_ROLE[role]):
        values = {"action": name, "actor": actor}
        if name == "dispatch":
            values["unit"] = "fire"
        if name in ("extend", "request_extension"):
            values["deadline"] = format_ms(LATE + HOUR)
        values["note"] = "why"
        if name in ("verify_pass", "verify_fail") and may_stand_in(role):
            values["stand_in"] = True
        candidate = Action("ffffffff-ffff-7fff-bfff-ffffffffffff", str(HLC(LATE, 0, TABLET)), values)
        # Judged after every well-stamped action (a malformed stamp sorts anywhere, and never applies).
        judged = entry(fold_case(event, [*actions, candidate], category=category), candidate.id)
        assert (name in offered) == judged.applied, (name, judged.reason)


@pytest.mark.parametrize("role, actor, before, offered", [
    ("supervisor", SUPERVISOR, [], ("dispatch", "close", "comment", "mark_duplicate", "supervise")),
    ("worker", REPORTER, [], ("comment",)),
    ("worker", REPORTER, [dispatch(1), rectify(2)], ("verify_pass", "verify_fail", "comment")),
    ("worker", WORKER, [dispatch(1), rectify(2)], ("comment",)),  # only the reporter verifies
    ("unit", UNIT_USER, [dispatch(1)], ("rectify", "comment", "send_back", "request_extension")),
    ("unit", UNIT_USER, [dispatch(1), rectify(2)], ("comment",)),
    ("supervisor", SUPERVISOR, [dispatch(1), act(2, "request_extension", UNIT_USER, note="rain", deadline=at(9000))],
     ("dispatch", "close", "extend", "comment", "mark_duplicate", "supervise", "grant_extension",
      "refuse_extension")),
    ("admin", SUPERVISOR, [dispatch(1), rectify(2)],
     ("verify_pass", "verify_fail", "close", "return", "extend", "comment", "mark_duplicate", "supervise")),
])
def test_the_offered_actions_follow_the_case_and_the_role(role, actor, before, offered):
    state = fold_case(EVENT, before)
    assert available_actions(state, role, actor=actor, reporter=REPORTER) == offered


odd_values = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.text(max_size=3),
                       st.just(REPORTER), st.lists(st.booleans(), max_size=1))


@given(event=st.one_of(st.dictionaries(st.sampled_from(["urgent", "micro", "reporter", "category", "grid"]),
                                       odd_values, max_size=5), st.none(), st.just([])),
       category=st.one_of(st.none(), st.fixed_dictionaries({}, optional={
           "deadline_hours": odd_values, "urgent_deadline_hours": odd_values})),
       now=st.one_of(st.none(), st.integers(0, 2 * T0)), empty=st.sampled_from([[], ()]))
def test_a_case_without_actions_folds_as_the_whole_fold_does(event, category, now, empty):
    """fold_case keeps the fold of no actions per (urgent, micro) (speed); it is what the whole fold gives."""
    from shared.case import _fold

    assert fold_case(event, empty, category=category, now_ms=now) == _fold(event, [], category=category, now_ms=now)


@given(events, actions_st, categories, nows, st.sampled_from(sorted(INERT_ACTIONS)), hlcs, action_values,
       st.integers(20_000, 30_000))
def test_a_new_inert_action_anywhere_changes_nothing_but_the_timeline(event, actions, category, now, name, hlc,
                                                                      values, n):
    """INERT_ACTIONS (a comment): a new one, at any time in the history, leaves the state as it was but the
    timeline, which gains it. The store updates a case's feed position alone for one (casebook.py)."""
    assert INERT_ACTIONS == {"comment"}
    extra = Action(f"0193b5c8-0000-7000-9000-{n:012x}", hlc, {**values, "action": name})  # an id no other holds
    before = fold_case(event, actions, category=category, now_ms=now)
    after = fold_case(event, [*actions, extra], category=category, now_ms=now)
    assert replace(after, timeline=()) == replace(before, timeline=())
    assert [e for e in after.timeline if e.action_id != extra.id] == list(before.timeline)
