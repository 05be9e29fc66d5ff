"""A central difference that straddles a kink (ReLU input at 0, a max-pool tie) is not a
failure: such entries are named as not compared, while a wrong backward still fails."""
import numpy as np
import pytest

import gpubp
from gpubp import nn
from gpubp.errors import GpubpWarning, GradcheckError
from gpubp.tools.gradcheck import gradcheck, gradcheck_layer


class HalfAgainReLU(nn.ReLU):
    """A wrong layer: its delta is 1.5 times ReLU's."""

    def backward(self, dY, out=None):
        return super().backward(dY, out) * 1.5


def relu_net(relu=nn.ReLU):
    return gpubp.Sequential([nn.Dense(5, 6), relu(), nn.Dense(6, 3)], dtype="float64", seed=0)


def data(kink_row=None):
    """A batch of 8; with ``kink_row``, that sample is all zeros, so (the biases start at 0)
    every hidden pre-activation of it is exactly 0: each first-layer bias sits on a ReLU kink."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 5)), rng.integers(0, 3, 8)
    if kink_row is not None:
        X[kink_row] = 0.0
    return X, y


def test_relu_inputs_at_and_near_zero():
    """Before: dX failed at the entries within eps of 0. Exactly 0 and 3e-9 (within eps/100) are
    kinks; 3e-7 and -5e-7 (within eps, beyond eps/10) pass at the smaller step."""
    X = np.random.default_rng(0).normal(size=(3, 4))
    X[0, 1], X[2, 2], X[1, 2], X[2, 0] = 0.0, 3e-9, 3e-7, -5e-7
    for layer in (nn.ReLU(), nn.LeakyReLU()):
        with pytest.warns(GpubpWarning, match=r"2 entries are at a kink.*not compared: dX\[0, 1\], dX\[2, 2\]"):
            report = gradcheck_layer(layer, X)
        assert report.ok and report.kinks == [("dX", (0, 1)), ("dX", (2, 2))]
        assert report.rows[0].checked == X.size - 2
        text = str(report)
        assert "at a kink, not compared (2)" in text and "dX[0, 1]: slope" in text and "FAIL" not in text


def test_every_kink_is_a_true_subgradient_choice():
    """At each named kink backprop took one of the one-sided slopes (ReLU's delta at 0 is one side)."""
    X = np.zeros((2, 3))
    with pytest.warns(GpubpWarning):
        report = gradcheck_layer(nn.ReLU(), X)
    for k in report.rows[0].kinks:
        assert k.left != k.right and k.backprop in (k.left, k.right)


def test_a_relu_net_with_a_sample_at_the_kink_passes_naming_the_kinks():
    """Before: GradcheckError on 0.b. Each hidden unit's bias moves sample 2 across ReLU's kink."""
    X, y = data(kink_row=2)
    with pytest.warns(GpubpWarning, match=r"6 entries are at a kink.*0\.b\[0\], 0\.b\[1\]"):
        report = gradcheck(relu_net(), "softmax_cross_entropy", X, y)
    assert report.ok
    assert report.kinks == [("0.b", (j,)) for j in range(6)]
    row = {r.name: r for r in report.rows}
    assert row["0.b"].checked == 0 and row["0.W"].checked == 30 and not row["0.W"].kinks
    assert "0.b[5]: slope" in str(report) and "not compared\n" in str(report)  # nothing of 0.b compared


@pytest.mark.parametrize("kink_row", [None, 2])
def test_a_wrong_backward_still_fails_with_relus_and_kinks(kink_row):
    X, y = data(kink_row)
    with pytest.raises(GradcheckError) as caught:
        gradcheck(relu_net(HalfAgainReLU), "softmax_cross_entropy", X, y)
    report = caught.value.report
    failed = {r.name for r in report.rows if not r.ok}
    assert "0.W" in failed and {"2.W", "2.b"}.isdisjoint(failed)  # only what is behind the wrong ReLU
    for k in (k for r in report.rows for k in r.kinks):  # a kink excuses only a backprop between the slopes
        assert min(k.left, k.right) - 1e-6 <= k.backprop <= max(k.left, k.right) + 1e-6
    if kink_row is None:
        assert report.kinks == []


def test_a_backprop_outside_the_one_sided_slopes_fails_at_a_kink():
    """Every entry of X at 0: slopes 0 and w_i; the wrong delta 1.5 w_i is neither nor between."""
    class HalfAgainOn(nn.ReLU):
        def backward(self, dY, out=None):
            return dY * 1.5  # as if every input were > 0, times 1.5
    with pytest.raises(GradcheckError) as caught:
        gradcheck_layer(HalfAgainOn(), np.zeros((2, 3)))
    assert caught.value.report.kinks == [] and caught.value.report.rows[0].checked == 6


def test_max_pool_ties():
    """An exact tie in a window is a kink for both entries; a gap of 3e-7 is resolved at eps/10."""
    X = np.random.default_rng(0).normal(size=(1, 1, 4, 4))
    X[0, 0, 0, 0] = X[0, 0, 0, 1] = 5.0
    X[0, 0, 2, 2], X[0, 0, 2, 3] = 4.0, 4.0 + 3e-7
    with pytest.warns(GpubpWarning, match="2 entries are at a kink"):
        report = gradcheck_layer(nn.MaxPool2D(2), X)
    assert report.ok and report.kinks == [("dX", (0, 0, 0, 0)), ("dX", (0, 0, 0, 1))]


def test_many_kinks_are_listed_in_full_in_the_report_and_cut_short_in_print():
    with pytest.warns(GpubpWarning, match="16 entries are at a kink.* and 6 more"):
        report = gradcheck_layer(nn.ReLU(), np.zeros((4, 4)))
    assert len(report.kinks) == 16 and report.rows[0].checked == 0 and report.ok
    assert "... and 6 more (report.kinks lists them all)" in str(report)


def test_without_a_smaller_step_a_kink_is_a_failure():
    """float32 at eps=2e-4: eps/10 is below sqrt(u)/10, so nothing tells a kink from a wrong slope."""
    X = np.ones((1, 3))
    X[0, 1] = 0.0
    with pytest.warns(GpubpWarning, match="below the square root"), pytest.raises(GradcheckError) as caught:
        gradcheck_layer(nn.ReLU(), X, dtype="float32", eps=2e-4, atol=1e-2, rtol=1e-2)
    assert caught.value.report.kinks == []


def test_kinks_keep_the_progress_display(monkeypatch, capsys):
    import itertools
    from gpubp import progress
    from gpubp.tools.gradcheck import differences as module
    monkeypatch.setattr(progress, "_isatty", lambda stream: True)
    clock = itertools.count(step=1.0)  # every evaluation "takes" a second: 2 x 8 entries, 16 s, shown
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    with pytest.warns(GpubpWarning, match="1 entry is at a kink"):
        gradcheck_layer(nn.ReLU(), np.array([[0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 4.0]]))
    assert "entry 8/8" in capsys.readouterr().err


def test_the_command_names_kinks_and_exits_0(monkeypatch, capsys):
    from gpubp.cli import args, main
    real = args.synthetic

    def with_a_zero_sample(*a):
        X, y = real(*a)
        X[0] = 0.0
        return X, y
    monkeypatch.setattr(args, "synthetic", with_a_zero_sample)
    assert main(["gradcheck", "--activation", "relu", "--widths", "4,5,3"]) == 0
    out = capsys.readouterr().out
    assert "at a kink, not compared (5)" in out and "0.b[4]: slope" in out
    assert "5 entries at a kink not compared (not failures)" in out and "FAIL" not in out
    real_backward = nn.ReLU.backward
    monkeypatch.setattr(nn.ReLU, "backward", lambda self, dY, out=None: real_backward(self, dY, out) * 1.5)
    assert main(["gradcheck", "--activation", "relu", "--widths", "4,5,3"]) == 1
    assert "FAIL" in capsys.readouterr().out
