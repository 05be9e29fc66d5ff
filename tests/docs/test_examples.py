"""examples/*.py: each main() runs, and its results match values computed here independently."""
import importlib.util
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

EXAMPLES = ROOT / "examples"
SCRIPTS = ["house_price", "sigmoid_neuron", "two_layer_net", "derivatives"]


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_house_price_closed_form():
    """w <- w - lr 2x(wx - y) makes the error e_k = 0.92^k e_0, e_0 = 2 - 100."""
    res = load("house_price").main(verbose=False)
    k = np.arange(125)
    np.testing.assert_allclose(res["losses"], (98.0 * 0.92**k) ** 2, rtol=1e-10)
    first_below = int(np.argmax((98.0 * 0.92**k) ** 2 < 1e-4)) + 1
    assert res["converged_epoch"] == first_below == 112
    assert res["weights"][-1] == pytest.approx(50 - 49 * 0.92**125, rel=1e-12)
    assert {e: v for e, _, _, v in res["seed_check"]} == {20: "truncated", 50: "rounded",
                                                         100: "rounded", 112: "truncated"}


def test_house_price_verdicts():
    verdict = load("house_price").verdict
    assert verdict(404.00765171, "404.0077") == "rounded"
    assert verdict(404.00765171, "404.0076") == "truncated"
    assert verdict(404.00765171, "404.0175") == "wrong"


def test_sigmoid_neuron_and_the_wrong_seed_figure():
    res = load("sigmoid_neuron").main(verbose=False)
    x, w, b = np.array([2.0, -1.0, 3.0]), np.array([0.5, -0.3, 1.2]), 0.6
    a = 1.0 / (1.0 + math.exp(-(w @ x + b)))
    delta = 2 * (a - 1.0) * a * (1 - a)
    assert res["prediction"] == pytest.approx(a, rel=1e-12)
    assert res["loss"] == pytest.approx((a - 1.0) ** 2, rel=1e-10)
    np.testing.assert_allclose(res["dL_dw"], delta * x, rtol=1e-10)
    assert res["dL_db"] == pytest.approx(delta, rel=1e-10)
    np.testing.assert_allclose(res["w_new"], w - 0.1 * delta * x, rtol=1e-12)
    assert res["seed_prediction_wrong"] and abs(res["prediction"] - 0.9876) > 0.008
    assert 1.0 / (1.0 + math.exp(-res["z_for_seed_prediction"])) == pytest.approx(0.9876)


def test_two_layer_net_against_finite_differences():
    res = load("two_layer_net").main(verbose=False)
    p = {"W1": 0.5, "b1": 0.1, "W2": 1.5, "b2": 0.2}

    def seed_loss(q):
        s = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
        return 0.5 * (s(q["W2"] * s(q["W1"] * 1.0 + q["b1"]) + q["b2"]) - 0.8) ** 2

    h = 1e-6
    for k in p:
        fd = (seed_loss({**p, k: p[k] + h}) - seed_loss({**p, k: p[k] - h})) / (2 * h)
        assert res["gpubp_half"][k] == pytest.approx(fd, rel=1e-6)
        assert res["by_hand"][k] == pytest.approx(fd, rel=1e-6)
    assert res["gpubp_mse"] == pytest.approx(2 * seed_loss(p), rel=1e-12)
    assert res["gradcheck_ok"]


def test_derivatives_chain_rule_and_seed_formula():
    res = load("derivatives").main(verbose=False)
    for name in ("sin(x^2)", "e^sqrt(x)", "z(t)"):
        assert res[name]["chain_rule"] == pytest.approx(res[name]["finite_difference"], rel=1e-7)
    assert res["sin(x^2)"]["chain_rule"] == pytest.approx(math.cos(9.0) * 6.0)
    printed = res["z(t) as printed in the seed"]
    assert abs(printed["chain_rule"] - printed["finite_difference"]) > 0.1


def test_derivatives_sympy_path():
    pytest.importorskip("sympy", reason="SymPy is optional")
    res = load("derivatives").main(verbose=False)
    for name in ("sin(x^2)", "e^sqrt(x)", "z(t)"):
        assert res[name]["sympy"] == pytest.approx(res[name]["chain_rule"], rel=1e-12)


def test_derivatives_without_sympy(monkeypatch):
    monkeypatch.setitem(sys.modules, "sympy", None)
    res = load("derivatives").main(verbose=False)
    assert all(r["sympy"] is None for r in res.values())


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_as_a_script(name):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")]),
           "GPUBP_DEVICE": "cpu"}
    out = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
