"""How a service's background tasks end at stop (shared/runtime.py): one that can be asked to
stop finishes its round; one that cannot is cancelled at once."""

import asyncio

from shared import runtime
from shared.runtime import Background


async def test_a_task_asked_to_stop_finishes_and_the_others_are_cancelled() -> None:
    stopping, finished, cancelled = asyncio.Event(), [], []

    async def clock_loop() -> None:
        await stopping.wait()
        await asyncio.sleep(0.05)  # the round in hand
        finished.append("clock")

    async def announcer() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append("announcer")
            raise

    background = [Background("clock", clock_loop, stop=stopping.set),
                  Background("announcer", announcer)]
    tasks = {asyncio.create_task(b.work(), name=b.name): b for b in background}
    await asyncio.sleep(0)
    await runtime.stop_background(tasks)
    assert finished == ["clock"] and cancelled == ["announcer"]
    assert all(task.done() for task in tasks)
