"""Bad input to gpubp.parity: refused with a gpubp error naming it before any training step,
and never a report of "within tolerance" for a comparison that did not take place."""
import threading

import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, GpubpWarning, InvalidValueError, NumericalError, ShapeError
from gpubp.optim import SGD
from gpubp.tools.parity import Perturbation

PAIR = ("cpu/float32", "cpu/float64")


def make_model():
    return gpubp.mlp(4, [8], 3, "tanh", "cpu", "float32", seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 4)), rng.integers(0, 3, 16)


@pytest.mark.parametrize("fault,what", [
    (Perturbation(layer=0, step=5), r"step must be in \[0, 1\] \(the run has 2 steps\), got 5"),
    (Perturbation(layer=1, step=0, quantity="dW"), r"layer 1 \(Tanh\(\)\) has no W, so no dW to perturb"),
    (Perturbation(layer=2, step=0, quantity="db", rel=0.0), "rel must be a finite number other than 0"),
    (Perturbation(layer=0, step=0, rel=float("nan")), "rel must be a finite number, got nan"),
    (Perturbation(layer=0, step=0, rel="0.1"), "rel must be a finite number, got '0.1'"),
    (Perturbation(layer=0.5, step=0), "layer must be a whole number >= 0, got 0.5"),
    (Perturbation(layer=3, step=0), r"layer must be in \[0, 2\] \(the model has 3 layers\), got 3"),
    (Perturbation(layer=0, step=0, side=True), "side must be a whole number >= 0, got True"),  # was: side 1
    (Perturbation(layer=0, step=0, side=2), r"side must be in \[0, 1\]"),
    (Perturbation(layer=0, step=0, quantity="dZ"), r"quantity must be one of \('Y', 'dX', 'dW', 'db'\), got 'dZ'"),
    ({"layer": 0}, "perturb must be a Perturbation"),
])
def test_a_fault_that_would_never_be_applied_is_refused(fault, what, data):
    """Before: the run went on without the fault and reported 'within tolerance everywhere'."""
    with pytest.raises(InvalidValueError, match=what):
        gpubp.parity(make_model(), *data, "softmax_cross_entropy", steps=2, backends=PAIR, perturb=fault)


def test_a_fault_on_a_layer_with_that_parameter_is_still_found(data):
    report = gpubp.parity(make_model(), *data, "softmax_cross_entropy", steps=2, backends=("cpu", "cpu"),
                          perturb=Perturbation(layer=2, step=1, quantity="db"))
    assert (report.first_failure.step, report.first_failure.layer, report.first_failure.quantity) == (1, 2, "db")


@pytest.mark.parametrize("kwargs,what", [
    ({"steps": 2.5}, "steps must be a whole number >= 1, got 2.5"),
    ({"steps": "3"}, "steps must be a whole number >= 1, got '3'"),
    ({"steps": 0}, "steps must be a whole number >= 1, got 0"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ({"batch_size": -4}, "batch_size must be a whole number >= 1, got -4"),
    ({"lr": 0}, "lr must be a finite number > 0, got 0"),
    ({"lr": "0.1"}, "lr must be a finite number > 0, got '0.1'"),
    ({"backends": "cpu"}, "two backends.*got 'cpu'"),
    ({"backends": None}, "two backends.*got None"),
    ({"optimizer": None}, "optimizer must be a gpubp.optim name"),
    ({"optimizer": SGD}, "optimizer must be a gpubp.optim name"),
])
def test_bad_arguments_are_named(kwargs, what, data):
    args = {"backends": PAIR, **kwargs}
    with pytest.raises(InvalidValueError, match=what):
        gpubp.parity(make_model(), *data, "softmax_cross_entropy", **args)


def test_bad_data_is_named(data):
    X, y = data
    with pytest.raises(ShapeError, match="X has 16 rows but y has 5"):
        gpubp.parity(make_model(), X, y[:5], "softmax_cross_entropy", backends=PAIR)
    with pytest.raises(ShapeError, match="at least one row"):
        gpubp.parity(make_model(), X[:0], y[:0], "softmax_cross_entropy", backends=PAIR)
    with pytest.raises(InvalidValueError, match="model must be a gpubp Sequential"):
        gpubp.parity("model", X, y, "softmax_cross_entropy", backends=PAIR)
    with pytest.raises(DTypeError, match="parity: X must hold real numbers, got an array of dtype complex128"):
        gpubp.parity(make_model(), X + 1j, y, "softmax_cross_entropy", backends=PAIR)


def test_data_with_nan_is_refused_not_blamed_on_the_backends(data):
    """Before: the report said 'FIRST out of tolerance at step 0, layer 0 Y: non-finite values'."""
    X, y = data[0].copy(), data[1]
    X[3, 2] = np.inf
    with pytest.raises(NumericalError, match=r"parity: X contains 1 NaN/Inf value\(s\); the first at index \(3, 2\)"):
        gpubp.parity(make_model(), X, y, "softmax_cross_entropy", backends=PAIR)
    with pytest.raises(NumericalError, match="parity: y contains"):
        gpubp.parity(make_model(), data[0], np.full((16, 3), np.nan), "mse", backends=PAIR)


def test_lr_applies_to_an_optimizer_instance_too(data):
    """Before: lr was silently ignored for an instance (SGD(0.1) trained at 0.1 with lr=5)."""
    run = lambda opt, **kw: gpubp.parity(make_model(), *data, "softmax_cross_entropy", opt, steps=3,
                                         backends=PAIR, **kw).entries
    assert run(SGD(0.1), lr=0.5) == run(SGD(0.5)) != run(SGD(0.1))
    assert run("sgd") == run("sgd", lr=0.01)  # a name's default rate is unchanged


class Locked(gpubp.nn.Identity):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()


def test_a_model_that_cannot_be_copied_is_named(data):
    model = gpubp.Sequential([gpubp.Dense(4, 3), Locked()], seed=0)
    with pytest.raises(InvalidValueError, match="cannot be copied.*lock"):
        gpubp.parity(model, *data, "softmax_cross_entropy", backends=PAIR)


def test_one_backend_twice_without_a_fault_warns(data, recwarn):
    with pytest.warns(GpubpWarning, match="both sides are cpu/float32.*compares a backend with itself"):
        gpubp.parity(make_model(), *data, "softmax_cross_entropy", steps=1, backends=("cpu", "cpu/float32"))
    gpubp.parity(make_model(), *data, "softmax_cross_entropy", steps=1, backends=("cpu", "cpu"),
                 perturb=Perturbation(layer=0, step=0))  # the way to test the report itself: no warning
    assert not [w for w in recwarn if issubclass(w.category, GpubpWarning)]


def test_a_long_run_shows_its_progress_and_a_short_one_does_not(data, monkeypatch, capsys):
    """Before: a parity run of many steps on a large model said nothing until its report."""
    import itertools

    from gpubp import progress
    from gpubp.tools.parity import run
    monkeypatch.setattr(progress, "_isatty", lambda stream: True)
    gpubp.parity(make_model(), *data, "cross_entropy", steps=3, backends=PAIR)  # fast: no bar
    assert "step" not in capsys.readouterr().err
    clock = itertools.count(step=6.0)  # each reading 6 s later: the first step "takes" 6 s, 3 steps 18 s
    monkeypatch.setattr(run.time, "perf_counter", lambda: next(clock))
    report = gpubp.parity(make_model(), *data, "cross_entropy", steps=3, backends=PAIR)
    err = capsys.readouterr().err
    assert "step 3/3" in err and ("in tolerance" in err) == report.ok
