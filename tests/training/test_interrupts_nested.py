"""Ctrl-C deferral where fits nest or the signal comes at once: a fit run inside another fit's
callback defers to its own steps (never cut mid-step), and SIGINT's handler is put back even
when the Ctrl-C arrives the moment the handler is installed."""
import os
import signal

import numpy as np
import pytest

import gpubp
from gpubp.train import fit
from gpubp.train.interrupts import Steps, deferred

BATCH, STEPS = 8, 6


def model(seed=0):
    return gpubp.Sequential([gpubp.Dense(3, 8), gpubp.Tanh(), gpubp.Dense(8, 2)], seed=seed)


def data(n=BATCH * STEPS):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 3)), rng.integers(0, 2, n)


class CtrlCInUpdate(gpubp.Adam):
    """Adam that receives a Ctrl-C at the start of its ``at``-th update: the middle of that step."""

    def __init__(self, at):
        super().__init__(lr=0.01)
        self.at = at

    def step(self, model):
        if self.t + 1 == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        super().step(model)


@pytest.fixture(autouse=True)
def default_sigint():
    """Every test runs with Python's own SIGINT handler (a suite started in the background
    inherits SIGINT ignored), and the suite's handler is put back after it."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_batch_end"])
def test_a_fit_inside_another_fits_callback_stops_at_its_own_step_end(hook):
    """The outer fit's handler raised at once between its steps (on_epoch_end: the inner step was cut
    before its update, t == at - 1) or deferred to the outer step's end (on_batch_end: the inner fit
    ran to its end, uninterrupted); now the inner fit finishes the step, stops, and the outer goes on."""
    X, y = data()
    inner = {}

    def run_inner(*args):
        if not inner:
            opt = inner["opt"] = CtrlCInUpdate(at=3)
            inner["history"] = fit(model(1), X, y, optimizer=opt, epochs=2, batch_size=BATCH, shuffle=False,
                                   progress=False)
            inner["handler"] = signal.getsignal(signal.SIGINT)

    outer_opt = gpubp.Adam(lr=0.01)
    outer = fit(model(), X, y, optimizer=outer_opt, epochs=2, batch_size=BATCH, progress=False,
                callbacks=type("Nest", (), {hook: lambda self, *a: run_inner(*a)})())
    assert inner["history"].interrupted and inner["history"].epochs == 0
    assert inner["opt"].t == 3  # the interrupted step's update was made: whole steps
    assert not outer.interrupted and outer.epochs == 2 and outer_opt.t == 2 * STEPS  # the Ctrl-C was the inner's
    assert isinstance(getattr(inner["handler"], "__self__", None), Steps)  # the outer's handler back in place
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_the_moment_the_handler_is_installed_still_puts_the_previous_one_back(monkeypatch):
    real = signal.signal

    def install_then_ctrl_c(signum, handler):
        previous = real(signum, handler)
        if isinstance(getattr(handler, "__self__", None), Steps):
            os.kill(os.getpid(), signal.SIGINT)  # raised by the new handler before signal.signal returns
        return previous

    monkeypatch.setattr(signal, "signal", install_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            pass
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_interrupted_the_moment_its_handler_is_in_returns_and_puts_it_back(monkeypatch):
    real = signal.signal

    def install_then_ctrl_c(signum, handler):
        previous = real(signum, handler)
        if isinstance(getattr(handler, "__self__", None), Steps):
            os.kill(os.getpid(), signal.SIGINT)
        return previous

    monkeypatch.setattr(signal, "signal", install_then_ctrl_c)
    X, y = data()
    opt = gpubp.Adam(lr=0.01)
    history = fit(model(), X, y, optimizer=opt, epochs=2, batch_size=BATCH, progress=False)
    monkeypatch.undo()
    assert history.interrupted and history.epochs == 0 and opt.t == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
