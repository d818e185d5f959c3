"""The two places where Rollcall reaches into nats-py's internals, kept here alone and refused
on a nats-py version they were not tested with.

1. A faster `Subscription.next_msg` (a patch, process-wide). `PullSubscription.fetch()` takes each
   message of a batch with `next_msg()`, which starts a task with a timer (named with a fresh
   uuid4) for every message, even one already waiting in the subscription's queue. At a thousand
   messages a batch that is tens of microseconds per message in every consumer (raw pull
   consume: about 24,000 messages/s as shipped, 50,000 with this change, on the benchmark's
   machine), and under load it made fetch() reach its deadline with most of a batch still
   queued. A message already queued is taken at once here, with the same bookkeeping as
   `next_msg`; an empty queue goes the usual way.
2. `take_queued`: what a pull subscription holds in its queue, taken without a new pull request
   (a read, no patch). A stopping consumer hands these messages back; nats-py's only public way
   to them, `fetch()`, also asks the server for more, which could arrive after the stop.

Everything else the services do with nats-py goes through its public API (`shared/consumer.py`).
"""

import functools
from importlib.metadata import version

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

# Versions whose `Subscription.next_msg` and `PullSubscription._sub` this module was checked
# against (the queue, its pending-size counter, `task_done`); tests/integration/test_bus_patches.py
# and test_consumer.py run on them.
TESTED_NATS_PY = ("2.16.0",)


class UntestedNatsPy(RuntimeError):
    pass


def check_version(installed: str | None = None) -> str:
    """The installed nats-py version, if this module was tested with it; otherwise refuse."""
    installed = installed or version("nats-py")
    if installed not in TESTED_NATS_PY:
        raise UntestedNatsPy(
            f"nats-py {installed} is installed, but shared/natsfix.py (a faster "
            "Subscription.next_msg, a pull subscription's queue read at stop) was tested only "
            f"with nats-py {', '.join(TESTED_NATS_PY)}. "
            f"Install a tested version (pip install 'nats-py=={TESTED_NATS_PY[-1]}'), or read "
            f"nats-py {installed}'s Subscription.next_msg and PullSubscription, run "
            "tests/integration/test_bus_patches.py and test_consumer.py against it and add the "
            "version to TESTED_NATS_PY.")
    return installed


@functools.cache
def _checked() -> str:
    return check_version()


def take_queued(sub: JetStreamContext.PullSubscription) -> list[Msg]:
    """The messages waiting in a pull subscription's queue, taken out (status messages meant
    for earlier pull requests are dropped), with no new pull request."""
    _checked()
    queued = sub._sub._pending_queue
    taken = []
    while not queued.empty():
        msg = queued.get_nowait()
        sub._sub._pending_size -= len(msg.data)
        queued.task_done()
        if msg.reply and not JetStreamContext.is_status_msg(msg):
            taken.append(msg)
    return taken


def take_queued_messages_at_once() -> None:
    """Install the faster `next_msg`, once per process (idempotent); refuses an untested
    nats-py first."""
    _checked()
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
