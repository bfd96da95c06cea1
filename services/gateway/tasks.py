"""The gateway's background tasks (block consumer, health poller, ticker, heartbeats, file
writer). Each is an endless loop, so a task that ends before shutdown - by an exception, a
return or a stray cancel - leaves the document frozen: it is logged as
``background_task_failed`` and recorded in ``failed``, which turns /readyz and /healthz red
so the failure is visible and a supervisor can restart the process."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from shared.logs import get_logger

log = get_logger("gateway")


class SupervisedTasks:
    """The gateway's endless asyncio tasks; any that ends before ``stop`` is a failure."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.failed: dict[str, str] = {}  # task name -> what ended it
        self._stopping = False

    def start(self, name: str, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job, name=name)
        task.add_done_callback(self._ended)
        self.tasks.append(task)

    @property
    def healthy(self) -> bool:
        return not self.failed

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel every task (shutdown): endings from here on are expected, not failures. A
        task still running after ``timeout_s`` (one waiting on a thread, which a cancel cannot
        interrupt) is logged and left: shutdown never hangs on it."""
        self._stopping = True
        for task in self.tasks:
            task.cancel()
        if not self.tasks:
            return
        _, pending = await asyncio.wait(self.tasks, timeout=timeout_s)
        if pending:
            log.error("background_tasks_not_stopped", tasks=sorted(t.get_name() for t in pending))

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        name = task.get_name()
        if task.cancelled():
            self.failed[name] = "cancelled"
            log.error("background_task_failed", task=name, error="cancelled")
            return
        exc = task.exception()
        if exc is None:
            self.failed[name] = "returned"
            log.error("background_task_failed", task=name, error="returned")
            return
        self.failed[name] = f"{type(exc).__name__}: {exc}"
        log.error("background_task_failed", task=name, error=self.failed[name], exc_info=exc)
