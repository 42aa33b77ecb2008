"""Stopping a training run on a signal without crashing TensorFlow.

A Python signal handler runs between bytecodes of the main thread, which during `model.fit` is inside
TensorFlow's own code most of the time; raising KeyboardInterrupt there can leave TensorFlow's C++ state
half-updated, and the process then dies of SIGSEGV (seen about 1 run in 8 when `leafdoc experiment` got
SIGTERM during an epoch: exit -11 instead of 130, with the report not written).

So while a fit runs, `request_stop` (installed by `stop_on_signals` for SIGTERM and SIGINT) only sets a
flag, and the `StopWhenAsked` callback raises KeyboardInterrupt at the next batch's or epoch's end, from
Python (at an epoch's end, after the checkpoint callback before it has saved the epoch). Outside a fit, and
on a second signal, it raises at once, as Python's own Ctrl-C does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()
_fitting = 0


def request_stop(signum=None, frame=None) -> None:
    """A signal handler: inside a fit, ask it to stop at the next batch; elsewhere stop now."""
    if _fitting and not _requested.is_set():
        _requested.set()
        return
    raise KeyboardInterrupt


def stop_requested() -> bool:
    return _requested.is_set()


@contextmanager
def fitting() -> Iterator[None]:
    """Mark a fit as running, so that `request_stop` defers to `StopWhenAsked`."""
    global _fitting
    _fitting += 1
    try:
        yield
    finally:
        _fitting -= 1


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (a stopped container, an ended session) and SIGINT (Ctrl-C) end the block with
    KeyboardInterrupt, deferred to a safe point while a fit runs. Main thread only (Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    _requested.clear()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _requested.clear()


def raise_if_requested() -> None:
    if _requested.is_set():
        _requested.clear()  # the stop is now an exception: a later fit in this process starts afresh
        raise KeyboardInterrupt


def stop_when_asked():
    """The Keras callback: put it last, after any callback that saves the epoch's checkpoint."""
    import keras

    class StopWhenAsked(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise_if_requested()

        def on_test_batch_end(self, batch, logs=None):
            raise_if_requested()

        def on_epoch_end(self, epoch, logs=None):
            raise_if_requested()

    return StopWhenAsked()
