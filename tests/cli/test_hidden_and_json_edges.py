"""Two command-line edges: --hidden with an empty width between commas, and evaluate --json of a
loss past float64's range."""
import json

import numpy as np
import pytest

from helpers import run_cli


@pytest.mark.parametrize("hidden", ["64,,32", ",,,", "64,"])
def test_an_empty_width_between_commas_is_refused(hidden, capsys):
    """Was: read as fewer layers (',,,': no hidden layer at all; '64,,32': two), without a word."""
    code, _, err = run_cli(["train", "--hidden", hidden, "--epochs", "1"], capsys)
    assert code == 2 and f"expected widths >= 1 separated by commas, e.g. 64,64; got {hidden!r}" in err


@pytest.mark.parametrize("hidden, widths", [("", []), (" 16 , 8 ", [16, 8])])
def test_no_hidden_layer_and_spaced_widths_are_taken(hidden, widths, tmp_path, capsys):
    code, out, _ = run_cli(["train", "--hidden", hidden, "--epochs", "1", "--save", str(tmp_path / "m.npz")], capsys)
    assert code == 0 and f"model: Sequential([Dense(64, {(widths + [10])[0]})" in out


def regression(tmp_path, scale):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    lines = ["a,b,t"] + [f"{a},{b},{float((a + 2 * b) * scale)!r}" for a, b in X]
    path = tmp_path / f"r{scale:g}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("as_json", [True, False])
def test_a_loss_past_float64_is_said_and_json_stays_json(as_json, tmp_path, capsys):
    """Was: NumPy's 'RuntimeWarning: overflow encountered in square' from cli/data.py, and with --json
    '{"loss": Infinity}', which strict JSON readers refuse."""
    model = tmp_path / "r.npz"
    assert run_cli(["train", "--data", str(regression(tmp_path, 1.0)), "--target", "t", "--loss", "mse",
                    "--epochs", "2", "--save", str(model)], capsys)[0] == 0
    with np.errstate(all="raise"):  # NumPy's own warning would be an error here
        code, out, err = run_cli(["evaluate", str(model), str(regression(tmp_path, 1e200))] + ["--json"] * as_json,
                                 capsys)
    assert code == 0 and "loss passes the range of float64 numbers (inf)" in err
    if as_json:
        assert json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == {"samples": 60, "loss": None}
        assert "JSON gives it as null" in err
    else:
        assert "loss: inf" in out
    code, out, _ = run_cli(["evaluate", str(model), str(regression(tmp_path, 1.0)), "--json"], capsys)
    assert code == 0 and np.isfinite(json.loads(out)["loss"])
