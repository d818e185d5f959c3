"""The per-unit token bucket: a burst, then one every interval; units never share a bucket."""

from services.ingest.ratelimit import UnitRate


def test_a_burst_then_one_every_interval() -> None:
    now = [0.0]
    rate = UnitRate(burst=3, interval_s=10, monotonic=lambda: now[0])
    assert [rate.take("A") for _ in range(3)] == [None, None, None]
    assert rate.take("A") == 10.0  # empty: the next token is 10 s away
    now[0] = 4.0
    assert rate.take("A") == 6.0
    now[0] = 10.0
    assert rate.take("A") is None and rate.take("A") is not None
    assert rate.take("B") is None  # another unit has its own bucket
    now[0] = 1_000.0
    assert [rate.take("A") for _ in range(4)][-1] is not None  # refilled to the burst, no more


def test_many_units_each_send_their_burst() -> None:
    rate = UnitRate(burst=2, interval_s=10, monotonic=lambda: 0.0)
    assert all(rate.take(f"U{i}") is None for i in range(10_000))


def test_memory_stays_bounded_and_off_means_off() -> None:
    now = [0.0]
    rate = UnitRate(burst=1, interval_s=1, monotonic=lambda: now[0], max_entries=100)
    for i in range(1_000):
        now[0] += 0.01
        assert rate.take(f"U{i}") is None
    assert len(rate._full_at) <= 100
    off = UnitRate(burst=0, interval_s=10)
    assert all(off.take("A") is None for _ in range(1_000))


def test_the_refusal_names_the_unit_and_the_limit() -> None:
    error = UnitRate(burst=20, interval_s=10).refusal("430621108001-CL", 7.2)
    assert (error.field, error.code) == ("unit", "rate_limited")
    assert "430621108001-CL" in error.message_en and "20" in error.message_en
    assert "retry in 8 s" in error.message_en
    assert "430621108001-CL" in error.message_zh and "8 秒" in error.message_zh


def test_a_token_given_back_can_be_spent_again() -> None:
    now = [0.0]
    rate = UnitRate(burst=2, interval_s=10, monotonic=lambda: now[0])
    assert rate.take("A") is None and rate.take("A") is None
    assert rate.take("A") is not None
    rate.give_back("A")  # the submission was not stored after all
    assert rate.take("A") is None and rate.take("A") is not None
    rate.give_back("A")
    rate.give_back("A")
    rate.give_back("B")  # nothing spent: nothing to give back
    assert rate.take("A") is None and rate.take("A") is None and rate.take("A") is not None


async def test_a_batch_that_does_not_commit_gives_its_tokens_back() -> None:
    from contextlib import asynccontextmanager
    from types import SimpleNamespace

    import pytest

    from services.ingest.submissions import _Batch

    rate = UnitRate(burst=1, interval_s=60, monotonic=lambda: 0.0)

    @asynccontextmanager
    async def database_down():
        raise ConnectionRefusedError("PostgreSQL is down")
        yield

    ctx = SimpleNamespace(limiter=rate, sessions=database_down, clock=lambda: None)
    batch = _Batch([], "report", ctx)  # type: ignore[arg-type]
    assert not batch.throttled(0, "A")  # the unit's one token, spent
    with pytest.raises(ConnectionRefusedError):
        async with batch.transaction():
            pass
    assert rate.take("A") is None  # given back: the retry is not refused as too fast
