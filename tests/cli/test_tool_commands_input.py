"""`gpubp gradcheck`, `gpubp parity` and `gpubp vanishing` with odd options: one line on stderr
and a non-zero exit, never a check that cannot fail reported as passed, nor a traceback."""
import re

import numpy as np
import pytest

from gpubp.cli import main
from gpubp.tools import diagnostics


@pytest.mark.parametrize("argv, words", [
    # a softmax over one output is constant: every gradient is 0 and any backward "passes"
    (["gradcheck", "--widths", "4,1", "--device", "cpu"], "--widths: softmax_cross_entropy needs at least 2 outputs"),
    (["parity", "cpu", "cpu/float64", "--widths", "8,1"], "--widths: softmax_cross_entropy needs at least 2 outputs"),
    # a regression dataset under the default softmax loss trained nothing and reported parity
    (["parity", "cpu", "cpu/float64", "--dataset", "house_price"],
     "--dataset house_price has real-valued targets, which --loss softmax_cross_entropy cannot train on; "
     "use --loss mse"),
    (["parity", "cpu", "cpu/float64", "--dataset", "digits", "--loss", "mse"],
     "--dataset digits has class labels.*use --loss softmax_cross_entropy"),
    # a fault on a quantity the layer does not have was silently not applied: "within tolerance"
    (["parity", "cpu", "cpu/float64", "--perturb", "1:0:dW"], r"layer 1 \(Tanh\(\)\) has no W, so no dW to perturb"),
    (["gradcheck", "--device", "cpu/float32"], "--device cpu/float32: gpubp gradcheck runs in float64"),
])
def test_refused_with_one_line(argv, words, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"gpubp {argv[0]}: error: ")
    assert re.search(words, err), err


def test_one_output_with_bce_is_still_checked(capsys):
    assert main(["gradcheck", "--widths", "4,1", "--loss", "bce", "--device", "cpu"]) == 0
    assert "ok" in capsys.readouterr().out


def test_parity_of_one_backend_with_itself_warns_in_one_line(capsys):
    assert main(["parity", "cpu", "cpu", "--steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "gpubp parity: warning: " in err and "compares a backend with itself" in err


def test_a_model_too_large_for_memory_is_one_error(monkeypatch, capsys):
    def too_large(**kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB")
    monkeypatch.setattr("gpubp.cli.vanishing.vanishing_experiment", too_large)
    assert main(["vanishing", "--device", "cpu", "--width", "100000", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert "--depth 10 --width 100000 does not fit in memory" in err and "Traceback" not in err


def test_gradcheck_of_a_model_too_large_for_memory_is_one_error(monkeypatch, capsys):
    import gpubp.cli.gradcheck as command

    def too_large(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB")
    monkeypatch.setattr(command, "mlp", too_large)
    assert main(["gradcheck", "--widths", "100000,100000,3", "--device", "cpu"]) == 1
    assert "--widths 100000,100000,3 does not fit in memory" in capsys.readouterr().err


def test_vanishing_with_a_dead_last_layer_prints_its_table(capsys):
    """200 layers of width 4: the ReLU net's units all die and its last dW is 0 (a ZeroDivisionError
    traceback before); the table and an inf/nan ratio are printed, the plot is declined in one line."""
    assert main(["vanishing", "--device", "cpu", "--depth", "200", "--width", "4", "--no-plot"]) == 0
    assert "first/last layer ||dW||" in capsys.readouterr().out
    assert np.isnan(diagnostics._ratio(0.0, 0.0)) and diagnostics._ratio(1.0, 0.0) == np.inf
