"""Starting a coroutine as a task whose first step runs at once, in the caller: the
asyncio adapter starts CSMS request handlers this way, so a handler that answers without
suspending costs no task and no trip through the event loop. Python 3.12 has it built in
(``eager_start``); on 3.11 a task parked in advance stands in (``_SpareTask``)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine, Generator
from typing import Any


@types.coroutine
def _resume(
    coroutine: Coroutine[Any, Any, Any],
    context: contextvars.Context,
    yielded: Any,
    error: BaseException | None = None,
) -> Generator[Any, Any, Any]:
    """Go on driving ``coroutine``, which suspended with ``yielded``, from the task that
    awaits this: what that task's loop sends or throws goes in, each step in ``context``.
    ``error`` is thrown in first instead of waiting."""
    while True:
        if error is not None:
            step: Callable[[Any], Any] = coroutine.throw
            argument: Any = error
            error = None
        else:
            try:
                argument = yield yielded
                step = coroutine.send
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:
                step, argument = coroutine.throw, thrown
        try:
            yielded = context.run(step, argument)
        except StopIteration as stop:
            return stop.value


class _SpareTask:
    """A task started in advance and parked, for a coroutine begun inline to go on in if
    it suspends. It is the current task during that first step, so the coroutine has one
    task from its first line to its last (asyncio.timeout and TaskGroup work as usual)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.handoff: asyncio.Future[tuple[Any, contextvars.Context, Any]] = loop.create_future()
        self.task = loop.create_task(self._continue())

    async def _continue(self) -> Any:
        try:
            coroutine, context, yielded = await self.handoff
        except asyncio.CancelledError as error:
            if not self.handoff.done() or self.handoff.cancelled():
                raise  # cancelled while parked
            # Cancelled between the handoff and this step: the coroutine gets it where
            # it suspended, as it would have in a task of its own.
            coroutine, context, yielded = self.handoff.result()
            return await _resume(coroutine, context, yielded, error)
        return await _resume(coroutine, context, yielded)


class EagerStarter:
    """Starts request handlers as tasks whose first step runs at once, in the caller.

    A handler that answers without suspending costs no task and no trip through the
    event loop, and its answer leaves in the same write as whatever the connection was
    sending anyway. Python 3.12 has this built in (``eager_start``); on 3.11 a parked
    :class:`_SpareTask` stands in as the current task during the first step and takes
    the coroutine over if it suspends.
    """

    def __init__(self, tasks: set[asyncio.Task[Any]]) -> None:
        self._tasks = tasks
        self._spare: _SpareTask | None = None

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        loop = asyncio.get_running_loop()
        if asyncio.current_task(loop) is not None:  # inside a task: no first step inline
            self._keep(loop.create_task(coroutine))
            return
        if sys.version_info >= (3, 12):
            task = asyncio.Task(coroutine, loop=loop, eager_start=True)
            if not task.done():
                self._keep(task)
            return
        spare = self._spare
        if spare is None or spare.task.done() or spare.task.cancelling():
            spare = self._spare = _SpareTask(loop)
            self._keep(spare.task)
        context = contextvars.copy_context()
        _enter_task(loop, spare.task)
        try:
            yielded = context.run(coroutine.send, None)
        except StopIteration:
            return
        except asyncio.CancelledError:
            return  # the coroutine cancelled itself: as a task, it would just end
        finally:
            _leave_task(loop, spare.task)
        self._spare = None
        if spare.handoff.done():  # the first step cancelled its own task
            spare.handoff = loop.create_future()
        spare.handoff.set_result((coroutine, context, yielded))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
