"""Ctrl-C inside a training step waits for the step's end: fit returns a model of whole steps
(parameters, optimizer step count and slots, Dropout's step counter, BatchNorm's statistics all
moved together), a second Ctrl-C stops at once, a fit inside another fit's callback defers to its own
steps, and SIGINT's handler is put back as it was, also when a Ctrl-C comes the moment it is installed."""
import os
import signal
import threading

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.train import ending, fit
from gpubp.train.interrupts import Steps, deferred

BATCH, STEPS = 8, 6  # batches of 8 samples, 6 steps an epoch


def plannable(seed=0):
    return gpubp.Sequential([gpubp.Dense(3, 8), gpubp.Tanh(), gpubp.Dense(8, 2)], seed=seed)


def eager(seed=0):  # Dropout and BatchNorm: the eager step, and state beside the parameters
    return gpubp.Sequential([gpubp.Dense(3, 8), gpubp.BatchNorm(8), gpubp.ReLU(), gpubp.Dropout(0.3),
                             gpubp.Dense(8, 2)], seed=seed)


def data(n=BATCH * STEPS):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 3)), rng.integers(0, 2, n)


def host(arrays):
    return {k: np.array(gpubp.get_backend("cpu").to_numpy(v)) for k, v in arrays.items()}


class CtrlCInUpdate(gpubp.Adam):
    """Adam that receives ``presses`` Ctrl-C at the start of its ``at``-th update (counting from 1),
    before it has updated anything: the middle of that training step."""

    def __init__(self, at, presses=1):
        super().__init__(lr=0.01)
        self.at, self.presses = at, presses

    def step(self, model):
        if self.t + 1 == self.at:
            for _ in range(self.presses):
                os.kill(os.getpid(), signal.SIGINT)
        super().step(model)


@pytest.fixture(autouse=True)
def default_sigint():
    """Every test runs with Python's own SIGINT handler (a suite started in the background
    inherits SIGINT ignored), and the suite's handler is put back after it."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("make, plan", [(plannable, True), (eager, False)], ids=["planned", "eager"])
def test_ctrl_c_inside_a_step_stops_after_that_step(make, plan):
    X, y = data()
    model, at = make(), 3
    opt = CtrlCInUpdate(at)
    history = fit(model, X, y, optimizer=opt, epochs=2, batch_size=BATCH, shuffle=False, plan=plan, progress=False)
    assert history.interrupted and history.epochs == 0
    assert opt.t == at  # the interrupted step's update was made, and counted once
    # the same run stopped cleanly after `at` whole steps: the first `at` batches (shuffle=False), one epoch
    ref_model, ref_opt = make(), gpubp.Adam(lr=0.01)
    ref = fit(ref_model, X[:at * BATCH], y[:at * BATCH], optimizer=ref_opt, epochs=1, batch_size=BATCH,
              shuffle=False, plan=plan, progress=False)
    assert not ref.interrupted and ref_opt.t == at
    for got, want in ((model.parameters(), ref_model.parameters()), (model.buffers(), ref_model.buffers())):
        got, want = host(got), host(want)
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for name, slots in ref_opt.state.items():
        for slot, a in slots.items():
            np.testing.assert_array_equal(host({slot: opt.state[name][slot]})[slot], host({slot: a})[slot])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_stops_at_once():
    X, y = data()
    opt = CtrlCInUpdate(at=3, presses=2)  # the user insists: the step is cut short, its update never made
    history = fit(plannable(), X, y, optimizer=opt, epochs=2, batch_size=BATCH, shuffle=False, progress=False)
    assert history.interrupted and history.epochs == 0
    assert opt.t == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_between_steps_is_not_deferred():
    class CtrlCAtEpochEnd:
        def on_epoch_end(self, epoch, model, history):
            os.kill(os.getpid(), signal.SIGINT)

    X, y = data()
    opt = gpubp.Adam(lr=0.01)
    history = fit(plannable(), X, y, optimizer=opt, epochs=3, batch_size=BATCH, callbacks=CtrlCAtEpochEnd(),
                  progress=False)
    assert history.interrupted and opt.t == STEPS  # raised in the callback: no step of the next epoch ran


def test_the_handler_is_installed_during_training_only_and_put_back_after_an_error():
    seen = []

    class Look:
        def on_batch_end(self, step, model, loss_value):
            seen.append(signal.getsignal(signal.SIGINT))
            raise InvalidValueError("stop here")

    X, y = data()
    with pytest.raises(InvalidValueError, match="stop here"):
        fit(plannable(), X, y, epochs=1, batch_size=BATCH, callbacks=Look(), progress=False)
    assert seen and seen[0] is not signal.default_int_handler and callable(seen[0])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_someone_else_set_is_left_alone():
    calls = []

    def mine(signum, frame):
        calls.append(signum)

    signal.signal(signal.SIGINT, mine)
    X, y = data()
    opt = CtrlCInUpdate(at=2)
    history = fit(plannable(), X, y, optimizer=opt, epochs=1, batch_size=BATCH, progress=False)
    assert calls == [signal.SIGINT]  # the user's handler got the Ctrl-C, and fit was not interrupted
    assert not history.interrupted and opt.t == STEPS
    assert signal.getsignal(signal.SIGINT) is mine


def test_fit_outside_the_main_thread_trains_without_a_handler():
    X, y = data()
    results = []
    thread = threading.Thread(target=lambda: results.append(fit(plannable(), X, y, epochs=1, batch_size=BATCH,
                                                                progress=False)))
    thread.start()
    thread.join()
    assert len(results) == 1 and results[0].epochs == 1  # signal.signal there would raise ValueError
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_steps_defer_one_ctrl_c_to_the_step_boundary():
    with deferred() as steps:
        steps.running = True
        os.kill(os.getpid(), signal.SIGINT)  # noted, not raised
        assert steps.pending
        with pytest.raises(KeyboardInterrupt):
            steps.end()
        assert not steps.running and not steps.pending
        steps.running = True
        steps.end()  # nothing pending: a step ends quietly
        with pytest.raises(KeyboardInterrupt):  # between steps: at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert isinstance(steps, Steps)


def ctrl_c_on_install(monkeypatch):
    """signal.signal patched so that a Ctrl-C arrives the moment fit's handler is installed."""
    real = signal.signal

    def install_then_ctrl_c(signum, handler):
        previous = real(signum, handler)
        if isinstance(getattr(handler, "__self__", None), Steps):
            os.kill(os.getpid(), signal.SIGINT)  # raised by the new handler before signal.signal returns
        return previous
    monkeypatch.setattr(signal, "signal", install_then_ctrl_c)


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
            inner["history"] = fit(plannable(1), X, y, optimizer=opt, epochs=2, batch_size=BATCH, shuffle=False,
                                   progress=False)
            inner["handler"] = signal.getsignal(signal.SIGINT)

    outer_opt = gpubp.Adam(lr=0.01)
    outer = fit(plannable(), X, y, optimizer=outer_opt, epochs=2, batch_size=BATCH, progress=False,
                callbacks=type("Nest", (), {hook: lambda self, *a: run_inner(*a)})())
    assert inner["history"].interrupted and inner["history"].epochs == 0
    assert inner["opt"].t == 3  # the interrupted step's update was made: whole steps
    assert not outer.interrupted and outer.epochs == 2 and outer_opt.t == 2 * STEPS  # the Ctrl-C was the inner's
    assert isinstance(getattr(inner["handler"], "__self__", None), Steps)  # the outer's handler back in place
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_the_moment_the_handler_is_installed_still_puts_the_previous_one_back(monkeypatch):
    ctrl_c_on_install(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            pass
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_interrupted_the_moment_its_handler_is_in_returns_and_puts_it_back(monkeypatch):
    ctrl_c_on_install(monkeypatch)
    X, y = data()
    opt = gpubp.Adam(lr=0.01)
    history = fit(plannable(), X, y, optimizer=opt, epochs=2, batch_size=BATCH, progress=False)
    monkeypatch.undo()
    assert history.interrupted and history.epochs == 0 and opt.t == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_while_fit_writes_its_last_checkpoint(presses, tmp_path, monkeypatch):
    """Was: one Ctrl-C while fit put back the best epoch or wrote its last checkpoint cut that
    work (the file kept an earlier epoch, or none). Now one waits for the end and the run returns
    whole; a second stops at once, the file left as it was (the write is atomic)."""
    real = ending.save_training

    def ctrl_c_then_save(*args, **kwargs):
        for _ in range(presses):
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(ending, "save_training", ctrl_c_then_save)  # the writer of fit's last checkpoint
    X, y = data()
    path = tmp_path / "run.npz"
    opt = gpubp.Adam(lr=0.01)
    if presses == 2:
        with pytest.raises(KeyboardInterrupt):
            fit(plannable(), X, y, optimizer=opt, epochs=2, batch_size=BATCH, progress=False, checkpoint_path=path,
                checkpoint_every=5)
        assert not path.exists()
    else:
        history = fit(plannable(), X, y, optimizer=opt, epochs=2, batch_size=BATCH, progress=False,
                      checkpoint_path=path, checkpoint_every=5)  # no write at an epoch's end: only the last
        assert not history.interrupted and history.epochs == 2
        assert gpubp.checkpoint.read_metadata(path)["extra"]["epochs_done"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_validation_drops_that_epochs_records(monkeypatch):
    """The history returned holds whole epochs: the epoch whose validation a Ctrl-C cut short
    leaves none of its training records behind, every per-epoch list as long as the others."""
    import sys
    fit_module = sys.modules["gpubp.train.fit"]
    real, calls = fit_module._evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(fit_module, "_evaluate", evaluate)
    X, y = data()
    history = fit(plannable(), X, y, epochs=3, batch_size=BATCH, progress=False, validation_data=(X, y))
    assert history.interrupted and history.epochs == 1
    for name in ("loss", "metric", "lr", "epoch_time", "samples_per_sec", "val_loss", "val_metric"):
        assert len(getattr(history, name)) == 1, name
