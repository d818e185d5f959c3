"""The alert lifecycle as a pure state machine: any sequence of commands and clock ticks keeps
its invariants (no database, no broker)."""

import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts import machine
from services.alerts.machine import AlertState, Changed, NewAlert, WrongState
from shared import deadlines
from shared.rules import load_rules

RULES = load_rules()
FOUND = datetime(2031, 3, 2, 1, 0, tzinfo=UTC)
DEADLINE = FOUND + timedelta(hours=2)
VILLAGE = "430621108001"
OPERATOR = uuid.UUID(int=7)
S, M = timedelta(seconds=1), timedelta(minutes=1)
# The moments the clock's schedule turns on: a command may land exactly on one of them.
MOMENTS = [DEADLINE - 30 * M, DEADLINE, DEADLINE + 60 * M]
ALLOWED = {("open", "open"), ("open", "acknowledged"), ("open", "closed"),
           ("acknowledged", "acknowledged"), ("acknowledged", "closed"), ("closed", "closed")}


def new_case(received_at: datetime) -> NewAlert:
    return NewAlert(key=f"case:{uuid.uuid4()}", kind="case", topic="fever", node=VILLAGE,
                    day=date(2031, 3, 2), started_at=FOUND, received_at=received_at,
                    recipients=["village_committee"], unit=f"{VILLAGE}-CL",
                    unit_type="village_clinic", case_id=uuid.uuid4(), case_kind="fever")


def opened(received_after: timedelta = 5 * M) -> Changed:
    received = FOUND + received_after
    return machine.open_alert(new_case(received), uuid.uuid4(), RULES, received)


def check_change(before: AlertState | None, changed: Changed) -> None:
    """What every change keeps, whatever the command."""
    after = changed.state
    first = before.seq + 1 if before else 1
    assert [e.seq for e in changed.events] == list(range(first, after.seq + 1))
    assert len({e.msg_id for e in changed.events}) == len(changed.history)
    for event in changed.events:
        assert event.alert_id == after.alert_id
        if event.change == "escalated":  # only once the deadline has passed
            assert deadlines.is_past(after.deadline, event.at)
    if before is None:
        return
    assert (after != before) == bool(changed.history), "a change without its entry, or none"
    assert after.stage >= before.stage
    assert (before.status, after.status) in ALLOWED
    assert before.responsible.startswith(after.responsible), "escalation only goes up"
    if before.status == "closed":
        assert after == before and not changed.history
    if after.status != "open":
        assert after.next_at is None


commands = st.lists(st.one_of(
    st.tuples(st.just("tick"), st.integers(0, 200 * 60)),
    st.tuples(st.just("tick_to"), st.sampled_from(range(len(MOMENTS)))),
    st.tuples(st.just("acknowledge"), st.integers(0, 90 * 60)),
    st.tuples(st.just("close"), st.integers(0, 90 * 60)),
    st.tuples(st.just("system_close"), st.integers(0, 90 * 60)),
    st.tuples(st.just("exempt"), st.integers(0, 90 * 60)),
), max_size=25)


@settings(max_examples=300, deadline=None)
@given(received_after=st.integers(0, 4 * 3600), steps=commands)
def test_any_sequence_of_commands_and_ticks_keeps_the_invariants(
        received_after: int, steps: list[tuple[str, int]]) -> None:
    start = opened(timedelta(seconds=received_after))
    check_change(None, start)
    state = start.state
    now = FOUND + timedelta(seconds=received_after)
    for command, amount in steps:
        if command == "tick_to":
            now = max(now, MOMENTS[amount])
        else:
            now += timedelta(seconds=amount)
        try:
            if command in ("tick", "tick_to"):
                changed = machine.tick(state, now, RULES)
            elif command == "acknowledge":
                changed = machine.acknowledge(state, "值班员", OPERATOR, None, now, RULES)
            elif command == "close":
                changed = machine.close(state, "值班员", OPERATOR, "isolated", "已隔离", now,
                                        RULES)
            elif command == "exempt":
                changed = machine.exempt_units(state, [f"{VILLAGE}-CL"], 3, now, RULES)
            else:
                changed = machine.close(state, None, None, "reported", "all reported", now,
                                        RULES)
        except WrongState as refused:
            # Refused only where the lifecycle allows no such change, and then nothing changes.
            due = machine.tick(state, now, RULES).state.status
            assert refused.status == due
            assert due == "closed" or (command == "acknowledge" and due == "acknowledged")
            continue
        check_change(state, changed)
        state = changed.state


def test_opening_records_one_entry_and_one_event() -> None:
    start = opened()
    assert start.state.status == "open" and start.state.stage == 0 and not start.state.late
    assert start.state.deadline == DEADLINE and start.state.next_at == DEADLINE - 30 * M
    [event] = start.events
    assert event.change == "opened" and event.msg_id == f"alert:{start.state.alert_id}:1"


def test_acknowledged_at_the_deadline_is_in_time_and_escalates_nothing() -> None:
    taken = machine.acknowledge(opened().state, "值班员", OPERATOR, "已联系", DEADLINE, RULES)
    # The warning, overdue since 09:30, is taken first; no escalation at the deadline itself.
    assert [e.change for e in taken.events] == ["warned", "acknowledged"]
    assert taken.state.responsible == VILLAGE and taken.state.status == "acknowledged"
    assert machine.tick(taken.state, DEADLINE + 600 * M, RULES) == Changed(taken.state)


def test_a_moment_after_the_deadline_the_alert_escalates_before_the_operator_acts() -> None:
    warned = machine.tick(opened().state, DEADLINE - 30 * M + S, RULES).state
    taken = machine.acknowledge(warned, "值班员", OPERATOR, None, DEADLINE + S, RULES)
    assert [(e.change, e.actor) for e in taken.events] == [
        ("escalated", "system"), ("acknowledged", "值班员")]
    assert taken.state.responsible == "430621108" and taken.events[0].reason == (
        "not acknowledged in time")


def test_a_case_arriving_exactly_at_its_deadline_is_not_late() -> None:
    start = opened(timedelta(hours=2))
    assert not start.state.late and [e.change for e in start.events] == ["opened", "warned"]
    assert start.state.responsible == VILLAGE


def test_a_case_arriving_after_its_deadline_is_late_and_escalated_at_once() -> None:
    start = opened(timedelta(hours=2) + S)
    assert start.state.late
    assert [(e.change, e.reason) for e in start.events] == [("opened", "late"),
                                                            ("escalated", "late")]
    assert start.state.responsible == "430621108" and start.state.stage == 2


def test_the_lifecycle_refuses_what_it_does_not_allow() -> None:
    state = opened().state
    closed = machine.close(state, "值班员", OPERATOR, "excluded", "排除", FOUND + 10 * M,
                           RULES).state
    with pytest.raises(WrongState) as refused:
        machine.acknowledge(closed, "值班员", OPERATOR, None, FOUND + 11 * M, RULES)
    assert refused.value.status == "closed"
    with pytest.raises(WrongState):
        machine.close(closed, None, None, "reported", "all reported", FOUND + 11 * M, RULES)
    taken = machine.acknowledge(state, "值班员", OPERATOR, None, FOUND + 10 * M, RULES).state
    with pytest.raises(WrongState) as again:
        machine.acknowledge(taken, "值班员", OPERATOR, None, FOUND + 11 * M, RULES)
    assert again.value.status == "acknowledged"
    done = machine.close(taken, "值班员", OPERATOR, "referred", "已转诊", FOUND + 12 * M, RULES)
    assert done.state.status == "closed" and done.state.outcome == "referred"
    assert [e.change for e in done.events] == ["closed"]


def test_units_exempted_by_a_calendar_change_no_status_and_a_closed_alert_not_at_all() -> None:
    state = opened().state
    taken = machine.exempt_units(state, ["430621108001-CL"], 3, DEADLINE - 30 * M + S, RULES)
    # The warning due before is taken first; the alert stays open with its clock running.
    assert [(e.change, e.reason) for e in taken.events] == [
        ("warned", "30 minutes left"), ("units_exempted", "exempted by calendar 3")]
    assert taken.events[-1].units == ["430621108001-CL"] and taken.events[-1].exemption_id == 3
    assert taken.state.status == "open" and taken.state.next_at == DEADLINE
    assert machine.exempt_units(taken.state, [], 4, DEADLINE, RULES) == Changed(taken.state)
    closed = machine.close(taken.state, None, None, "withdrawn", "exempted by calendar 3",
                           DEADLINE - 10 * M, RULES).state
    assert machine.exempt_units(closed, ["x"], 4, DEADLINE, RULES) == Changed(closed)


def test_the_lifecycle_and_the_clock_import_no_sql_nats_or_http() -> None:
    """The domain stays pure: what it imports, followed to the end, reaches none of them."""
    code = ("import sys, services.alerts.machine, services.alerts.clock; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    for adapter in ("sqlalchemy", "asyncpg", "nats", "faststream", "fastapi", "starlette",
                    "httpx"):
        assert f"'{adapter}'" not in loaded, adapter
