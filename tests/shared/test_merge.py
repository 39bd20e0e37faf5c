"""Field-by-field merge is a semilattice join (commutative, associative, idempotent), last writer wins, earliest for append-only."""

import copy
import json
from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.hlc import HLC
from shared.merge import canonical, is_deleted, merge_record, values, write_key

A = "000000000000000a"
B = "000000000000000b"
T0 = 1_764_272_880_000


def hlc(offset_ms: int, counter: int = 0, node: str = A) -> str:
    """The string form of an HLC offset_ms after T0."""
    return str(HLC(T0 + offset_ms, counter, node))


H1, H2, H3 = hlc(1), hlc(2), hlc(3)

# --- strategies ---------------------------------------------------------------------------------
# Few fields, few timestamps: equal HLCs carrying different values come up often, which is the
# case the canonical-value tie-break exists for.

scalars = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([0.5, 1.0, "", "x", "y", "火"])
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["k", "l"]), children, max_size=2),
    max_leaves=5,
)
hlcs = st.builds(hlc, st.sampled_from([0, 1]), st.sampled_from([0, 1]), st.sampled_from([A, B]))
writes = st.tuples(json_values, hlcs)
states = st.dictionaries(st.sampled_from(["a", "b", "c", "_deleted"]), writes, max_size=4)
modes = pytest.mark.parametrize("append_only", [False, True], ids=["lww", "append_only"])


def merge(local, remote, append_only):
    return merge_record(local, remote, append_only=append_only).state


def as_json(state):
    """The state as it reads back from a JSON column: writes become lists."""
    return json.loads(json.dumps(state))


# --- laws ---------------------------------------------------------------------------------------

@modes
@given(states, states)
def test_merge_is_commutative(append_only, a, b):
    assert merge(a, b, append_only) == merge(b, a, append_only)


@modes
@given(states, states, states)
def test_merge_is_associative(append_only, a, b, c):
    assert merge(merge(a, b, append_only), c, append_only) == merge(a, merge(b, c, append_only), append_only)


@modes
@given(states, states)
def test_merge_is_idempotent(append_only, a, b):
    assert merge(a, a, append_only) == a
    ab = merge(a, b, append_only)
    assert merge(ab, b, append_only) == ab
    assert merge(ab, a, append_only) == ab
    assert merge_record(ab, b, append_only=append_only).changed == frozenset()


@modes
@given(st.lists(states, min_size=1, max_size=5), st.data())
def test_any_order_with_duplicates_gives_the_same_state(append_only, seen, data):
    duplicates = data.draw(st.lists(st.sampled_from(seen), max_size=4))
    shuffled = data.draw(st.permutations(seen + duplicates))
    in_order = reduce(lambda acc, s: merge(acc, s, append_only), seen, None)
    shuffled_and_repeated = reduce(lambda acc, s: merge(acc, s, append_only), shuffled, None)
    assert shuffled_and_repeated == in_order


@modes
@given(st.lists(states, min_size=1, max_size=5))
def test_merged_field_is_the_extreme_write_of_all_seen(append_only, seen):
    pick = min if append_only else max
    merged = reduce(lambda acc, s: merge(acc, s, append_only), seen, None)
    fields = {field for state in seen for field in state}
    assert set(merged) == fields
    for field in fields:
        candidates = [state[field] for state in seen if field in state]
        assert write_key(merged[field]) == write_key(pick(candidates, key=write_key))


@modes
@given(states, states)
def test_state_read_back_from_json_merges_like_the_original(append_only, a, b):
    assert merge(as_json(a), b, append_only) == merge(b, as_json(a), append_only) == merge(a, b, append_only)


@modes
@given(states, states)
def test_inputs_are_not_mutated(append_only, a, b):
    a_before, b_before = copy.deepcopy(a), copy.deepcopy(b)
    result = merge_record(a, b, append_only=append_only)
    assert a == a_before and b == b_before
    assert result.state is not a


# --- tables: last writer wins --------------------------------------------------------------------

@pytest.mark.parametrize("local, remote, winner", [
    (("old", H1), ("new", H2), ("new", H2)),
    (("new", H2), ("old", H1), ("new", H2)),
    (("a", hlc(0, 1)), ("b", hlc(0, 0)), ("a", hlc(0, 1))),  # the counter orders equal walls
    (("a", hlc(0, 0, B)), ("b", hlc(0, 0, A)), ("a", hlc(0, 0, B))),  # the node orders the rest
    (("a", hlc(1, 0, A)), ("b", hlc(0, 0xFFFF, B)), ("a", hlc(1, 0, A))),
])
def test_newer_hlc_wins(local, remote, winner):
    assert merge_record({"f": local}, {"f": remote}).state == {"f": winner}
    assert merge_record({"f": remote}, {"f": local}).state == {"f": winner}


@pytest.mark.parametrize("one, other, winner", [
    ("x", "y", "y"),
    (1, 2, 2),
    (False, True, True),
    (None, 0, None),  # "null" > "0"
    (1, 1.0, 1.0),  # "1.0" > "1"
    ({"k": 1}, [1], {"k": 1}),  # "{" > "["
    ({"k": 1, "l": 2}, {"l": 2, "k": 0}, {"k": 1, "l": 2}),  # key order does not matter
])
def test_equal_hlc_tie_is_broken_by_canonical_value(one, other, winner):
    first = merge_record({"f": (one, H1)}, {"f": (other, H1)}).state
    second = merge_record({"f": (other, H1)}, {"f": (one, H1)}).state
    assert first == second == {"f": (winner, H1)}
    assert canonical(first["f"][0]) == canonical(winner)


def test_canonical_encoding_is_key_sorted_compact_and_unescaped():
    assert canonical({"l": [1, None], "k": "火"}) == '{"k":"火","l":[1,null]}'


@pytest.mark.parametrize("local, remote, changed", [
    ({"a": ("x", H2)}, {}, set()),
    ({"a": ("x", H2)}, {"a": ("x", H2)}, set()),  # a replay
    ({"a": ("x", H2)}, {"a": ["x", H2]}, set()),  # a replay off the wire, as a list
    ({"a": ("x", H2)}, {"a": ("y", H1)}, set()),  # stale
    ({"a": ("x", H2), "b": ("x", H2)}, {"a": ("y", H1), "b": ("x", H2)}, set()),
    ({"a": ("x", H2)}, {"a": ("y", H3)}, {"a"}),
    ({"a": ("x", H2)}, {"a": ("x", H3)}, {"a"}),  # same value, newer stamp: the stamp is stored
    ({"a": ("x", H2)}, {"b": ("x", H1)}, {"b"}),  # a field local did not have, however old
    ({"a": ("x", H2), "b": ("x", H2)}, {"a": ("y", H1), "b": ("y", H3)}, {"b"}),
    (None, {"a": ("x", H1), "b": ("y", H1)}, {"a", "b"}),
    (None, {}, set()),
])
def test_changed_is_empty_exactly_when_remote_adds_nothing(local, remote, changed):
    result = merge_record(local, remote)
    assert result.changed == changed
    assert result.refused == frozenset()
    for field in changed:
        assert result.state[field] == tuple(remote[field])


def test_result_state_is_a_plain_dict_of_tuples():
    result = merge_record({"a": ["x", H1]}, {"b": ["y", H1]})
    assert result.state == {"a": ("x", H1), "b": ("y", H1)}
    assert values(result.state) == {"a": "x", "b": "y"}


# --- tables: tombstones --------------------------------------------------------------------------

def test_tombstone_beats_an_older_restore():
    local = {"description": ("leak", H1), "_deleted": (True, H2)}
    result = merge_record(local, {"_deleted": (False, H1)})
    assert is_deleted(result.state)
    assert result.changed == frozenset()
    assert is_deleted(merge_record({"_deleted": (False, H1)}, local).state)


def test_tombstone_loses_to_a_newer_restore():
    local = {"description": ("leak", H1), "_deleted": (True, H2)}
    result = merge_record(local, {"_deleted": (False, H3)})
    assert not is_deleted(result.state)
    assert result.changed == {"_deleted"}
    assert not is_deleted(merge_record({"_deleted": (False, H3)}, local).state)


def test_tombstone_beats_an_older_edit_and_keeps_a_newer_edit_without_restoring():
    deleted = {"description": ("leak", H1), "_deleted": (True, H2)}
    older_edit = merge_record(deleted, {"description": ("big leak", hlc(1, 1))})
    assert is_deleted(older_edit.state)
    newer_edit = merge_record(deleted, {"description": ("big leak", H3)})
    assert newer_edit.state["description"] == ("big leak", H3)
    assert is_deleted(newer_edit.state)  # only a write to _deleted restores a record


@pytest.mark.parametrize("state, deleted", [
    ({}, False),
    ({"a": ("x", H1)}, False),
    ({"_deleted": (False, H1)}, False),
    ({"_deleted": (True, H1)}, True),
    ({"_deleted": [True, H1]}, True),
])
def test_is_deleted_reads_the_tombstone(state, deleted):
    assert is_deleted(state) is deleted


# --- tables: append-only -------------------------------------------------------------------------

def test_append_only_refuses_a_later_different_value_and_keeps_local():
    local = {"action": ("dispatch", H1), "note": ("go", H1)}
    result = merge_record(local, {"action": ("close", H2), "note": ("go", H2)}, append_only=True)
    assert result.state == local
    assert result.refused == {"action"}
    assert result.changed == frozenset()


def test_append_only_earliest_write_stands():
    local = {"action": ("close", H2)}
    result = merge_record(local, {"action": ("dispatch", H1)}, append_only=True)
    assert result.state == {"action": ("dispatch", H1)}
    assert result.changed == {"action"}
    assert result.refused == frozenset()


def test_append_only_equal_hlc_keeps_the_lesser_canonical_value_on_both_sides():
    one, other = {"action": ("close", H1)}, {"action": ("dispatch", H1)}
    forward = merge_record(one, other, append_only=True)
    backward = merge_record(other, one, append_only=True)
    assert forward.state == backward.state == {"action": ("close", H1)}
    assert forward.refused == {"action"} and forward.changed == frozenset()
    assert backward.changed == {"action"} and backward.refused == frozenset()


@pytest.mark.parametrize("remote", [
    {"action": ("dispatch", H1)},
    {"action": ["dispatch", H1]},
    {"action": ("dispatch", H1), "note": ("go", H1)},
])
def test_append_only_identical_replay_is_neither_changed_nor_refused(remote):
    local = {"action": ("dispatch", H1), "note": ("go", H1)}
    result = merge_record(local, remote, append_only=True)
    assert result.state == local
    assert result.changed == frozenset()
    assert result.refused == frozenset()


def test_append_only_same_value_restamped_later_is_not_refused():
    local = {"action": ("dispatch", H1)}
    result = merge_record(local, {"action": ("dispatch", H3)}, append_only=True)
    assert result.state == local
    assert result.changed == frozenset() and result.refused == frozenset()


def test_append_only_accepts_fields_not_yet_held():
    result = merge_record({"action": ("dispatch", H2)}, {"note": ("go", H3)}, append_only=True)
    assert result.state == {"action": ("dispatch", H2), "note": ("go", H3)}
    assert result.changed == {"note"}
    assert result.refused == frozenset()


def test_lww_never_refuses():
    result = merge_record({"action": ("close", H2)}, {"action": ("dispatch", H1)})
    assert result.refused == frozenset()
    assert result.state == {"action": ("close", H2)}


@pytest.mark.parametrize("append_only", [False, True])
def test_nested_values_of_inputs_are_not_mutated(append_only):
    local = {"location": ({"lat": 30.1, "lon": 120.2}, H1), "photos": (["a"], H2)}
    remote = {"location": ({"lat": 31.0, "lon": 121.0}, H2), "photos": (["b"], H1), "x": ([1], H1)}
    local_before, remote_before = copy.deepcopy(local), copy.deepcopy(remote)
    merge_record(local, remote, append_only=append_only)
    assert local == local_before
    assert remote == remote_before
