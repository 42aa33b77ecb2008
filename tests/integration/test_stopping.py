"""A signal during model.fit stops it at the batch's end from Python, never inside TensorFlow (which crashed
the process with SIGSEGV about 1 time in 8); outside a fit, and on a second signal, it stops at once."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from leafdoc.train import stopping


def _fit_sending(sig: int, at_batch: int, ended: list[int]) -> None:
    """Fit a tiny model for 3 epochs of 8 batches, sending `sig` to this process as batch `at_batch`
    begins; `ended` collects the batches that ended."""
    import keras

    class Send(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if len(ended) == at_batch:
                os.kill(os.getpid(), sig)  # Python runs the handler right after this call

        def on_train_batch_end(self, batch, logs=None):
            ended.append(batch)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((64, 4), dtype=np.float32), np.arange(64) % 2
    with stopping.fitting():
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[Send(), stopping.stop_when_asked()])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_fit_stops_it_at_the_end_of_that_batch(sig):
    before = signal.getsignal(sig)
    ended: list[int] = []
    with stopping.stop_on_signals():
        with pytest.raises(KeyboardInterrupt):
            _fit_sending(sig, 3, ended)
        assert not stopping.stop_requested()  # the request became the exception
    # The batch the signal came in still ended (trained, its callbacks ran), and no later one began.
    assert ended == [0, 1, 2, 3]
    assert signal.getsignal(sig) is before  # the handlers are put back


def test_outside_a_fit_or_on_a_second_signal_it_stops_at_once():
    with stopping.stop_on_signals():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        with stopping.fitting():
            stopping.request_stop()  # the first one only asks
            assert stopping.stop_requested()
            with pytest.raises(KeyboardInterrupt):
                stopping.request_stop()  # a second one (the user presses Ctrl-C again) does not wait
        with pytest.raises(KeyboardInterrupt):
            stopping.raise_if_requested()
        assert not stopping.stop_requested()
