"""The one change Rollcall makes to nats-py's internals, kept here alone and refused on a
nats-py version it was not tested with.

`PullSubscription.fetch()` takes each message of a batch with `Subscription.next_msg()`, which
starts a task with a timer (named with a fresh uuid4) for every message, even one already
waiting in the subscription's queue. At a thousand messages a batch that is tens of
microseconds per message in every consumer (raw pull consume: about 24,000 messages/s as
shipped, 50,000 with this change, on the benchmark's machine), and under load it made fetch()
reach its deadline with most of a batch still queued. A message already queued is taken at once
here, with the same bookkeeping as `next_msg`; an empty queue goes the usual way.

Everything else the services do with nats-py goes through its public API (`shared/consumer.py`).
"""

from importlib.metadata import version

from nats.aio.subscription import Subscription

# Versions whose `Subscription.next_msg` this module was checked against (its queue, its
# pending-size counter, `task_done`); tests/integration/test_bus_patches.py runs on them.
TESTED_NATS_PY = ("2.16.0",)


class UntestedNatsPy(RuntimeError):
    pass


def check_version(installed: str | None = None) -> str:
    """The installed nats-py version, if this module was tested with it; otherwise refuse."""
    installed = installed or version("nats-py")
    if installed not in TESTED_NATS_PY:
        raise UntestedNatsPy(
            f"nats-py {installed} is installed, but shared/natsfix.py (a faster "
            f"Subscription.next_msg) was tested only with nats-py {', '.join(TESTED_NATS_PY)}. "
            f"Install a tested version (pip install 'nats-py=={TESTED_NATS_PY[-1]}'), or read "
            f"nats-py {installed}'s Subscription.next_msg, run "
            "tests/integration/test_bus_patches.py against it and add the version to "
            "TESTED_NATS_PY.")
    return installed


def take_queued_messages_at_once() -> None:
    """Install the faster `next_msg`, once per process (idempotent); refuses an untested
    nats-py first."""
    check_version()
    next_msg = Subscription.next_msg
    if getattr(next_msg, "_rollcall_fast_path", False):
        return

    async def fast_next_msg(self, timeout: float | None = 1.0):  # noqa: ASYNC109 (its signature)
        queue = self._pending_queue
        if not queue.empty() and not self._cb and not self._conn.is_closed:
            msg = queue.get_nowait()
            self._pending_size -= len(msg.data)
            queue.task_done()
            return msg
        return await next_msg(self, timeout)

    fast_next_msg._rollcall_fast_path = True
    fast_next_msg._shipped = next_msg
    Subscription.next_msg = fast_next_msg


def installed() -> bool:
    return getattr(Subscription.next_msg, "_rollcall_fast_path", False)


def remove() -> None:
    """nats-py as shipped again (the benchmark measures both)."""
    if installed():
        Subscription.next_msg = Subscription.next_msg._shipped
