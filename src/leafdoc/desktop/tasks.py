"""Work off the UI thread: every network call and file read or write runs in a thread pool.

`Tasks.run(fn, ...)` runs `fn` in a worker thread and calls back on the UI thread with its result or
its exception. Callbacks go through one QObject owned by the window, so a task that finishes after
the window is gone calls nothing.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


@dataclass
class _Callbacks:
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None
    on_progress: Callable[..., None] | None
    on_finally: Callable[[], None] | None


class _Runnable(QRunnable):
    def __init__(self, tasks: Tasks, task_id: int, fn: Callable, args: tuple, kwargs: dict, progress: bool):
        super().__init__()
        self._tasks, self._id, self._fn, self._args, self._kwargs = tasks, task_id, fn, args, kwargs
        self._progress = progress

    def run(self) -> None:
        kwargs = dict(self._kwargs)
        if self._progress:
            kwargs["progress"] = lambda *values: self._emit(self._tasks._progress, self._id, values)
        try:
            result = self._fn(*self._args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a dialog, never a dead thread
            self._emit(self._tasks._failed, self._id, exc)
        else:
            self._emit(self._tasks._done, self._id, result)

    @staticmethod
    def _emit(signal, task_id: int, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the window (and its Tasks object) is already gone
            signal.emit(task_id, value)


class Tasks(QObject):
    """A thread pool whose results come back on the UI thread."""

    _done = Signal(int, object)
    _failed = Signal(int, object)
    _progress = Signal(int, object)
    idle = Signal()

    def __init__(self, parent: QObject | None = None, threads: int = 4):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        # Network-bound work: more threads than cores, so a long upload never blocks a diagnosis.
        self.pool.setMaxThreadCount(threads)
        self._callbacks: dict[int, _Callbacks] = {}
        self.default_error: Callable[[BaseException], None] | None = None  # for tasks with no on_error
        self.closed = False
        self._ids = itertools.count(1)
        self._done.connect(self._on_done)
        self._failed.connect(self._on_failed)
        self._progress.connect(self._on_progress)

    def run(
        self,
        fn: Callable,
        *args,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[..., None] | None = None,
        on_finally: Callable[[], None] | None = None,
        **kwargs,
    ) -> int:
        """Run fn(*args, **kwargs) in a worker; with on_progress, fn also gets `progress=callable(*values)`."""
        task_id = next(self._ids)
        if self.closed:
            return task_id
        self._callbacks[task_id] = _Callbacks(on_done, on_error, on_progress, on_finally)
        self.pool.start(_Runnable(self, task_id, fn, args, kwargs, on_progress is not None))
        return task_id

    @property
    def busy(self) -> int:
        return len(self._callbacks)

    def shutdown(self, msecs: int = 5000) -> bool:
        """At close: drop queued tasks, wait for running ones, and call back nothing from now on
        (a request cut short by the closing window is not an error to show)."""
        self.closed = True
        self._callbacks.clear()
        self.pool.clear()
        return self.pool.waitForDone(msecs)

    @Slot(int, object)
    def _on_done(self, task_id: int, result: object) -> None:
        self._end(task_id, lambda cb: cb.on_done, result)

    @Slot(int, object)
    def _on_failed(self, task_id: int, exc: object) -> None:
        self._end(task_id, lambda cb: cb.on_error or self.default_error, exc)

    def _end(self, task_id: int, handler_of: Callable[[_Callbacks], Callable | None], value: object) -> None:
        """The task ended: its callbacks leave the table, the handler `handler_of` picks among them (if any) gets
        `value`, then on_finally runs whatever the handler did (none of it once the tasks are closed)."""
        cb = self._callbacks.pop(task_id, None)
        if cb is None or self.closed:
            return
        try:
            handler = handler_of(cb)
            if handler:
                handler(value)
        finally:
            self._finish(cb)

    @Slot(int, object)
    def _on_progress(self, task_id: int, values: object) -> None:
        cb = self._callbacks.get(task_id)
        if cb is not None and cb.on_progress and not self.closed:
            cb.on_progress(*values)  # type: ignore[misc]

    def _finish(self, cb: _Callbacks) -> None:
        if cb.on_finally:
            cb.on_finally()
        if not self._callbacks:
            self.idle.emit()
