"""gpubp train --resume of a run fit saved in Python (no record of a learning-rate schedule): it
continues as it ran. A run that kept one rate continues at it, whatever --model's default schedule
(was: a conv model got --model cnn's cosine schedule, so the resumed run was not the saved one); a
run whose rates changed is refused until --schedule names its schedule, which is then taken."""
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.cli import main
from gpubp.datasets import load_digits
from gpubp.schedules import get_schedule
from helpers import run_cli as run

CPU = ["--device", "cpu", "--quiet", "--val-split", "0"]  # the samples fit trained on: every training one


def cnn():
    return gpubp.Sequential([gpubp.Conv2D(1, 4, 3, padding=1), gpubp.ReLU(), gpubp.MaxPool2D(2),
                             gpubp.Conv2D(4, 8, 3, padding=1), gpubp.ReLU(), gpubp.MaxPool2D(2), gpubp.Flatten(),
                             gpubp.Dense(8 * 2 * 2, 10)], seed=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """constant.npz: 2 of the digits' epochs at one rate; cosine.npz: 2 epochs of a cosine schedule."""
    d = tmp_path_factory.mktemp("unrecorded_schedule")
    X, y, _, _ = load_digits()
    X = X.reshape(-1, 1, 8, 8)
    for name, schedule in (("constant", None), ("cosine", "cosine")):
        gpubp.fit(cnn(), X, y, lr=0.02, epochs=2, schedule=schedule, progress=False,
                  checkpoint_path=str(d / f"{name}.npz"), checkpoint_every=1)
    return d


def rates(path):
    return checkpoint.read_metadata(path)["extra"]["history"]["lr"]


def test_a_run_that_kept_one_rate_continues_at_it(saved, tmp_path):
    assert main(["train", "--resume", str(saved / "constant.npz"), "--dataset", "digits", "--epochs", "4", *CPU,
                 "--save", str(tmp_path / "m.npz")]) == 0
    assert rates(tmp_path / "m.npz") == pytest.approx([0.02] * 4)


def test_a_run_whose_rates_changed_needs_its_schedule_named(saved, tmp_path, capsys):
    code, out, last = run(["train", "--resume", str(saved / "cosine.npz"), "--dataset", "digits", "--epochs", "4",
                           *CPU], capsys)
    assert code == 1 and "keeps no record of its learning-rate schedule" in last and "--schedule" in last, last
    assert "epochs:" not in out
    assert main(["train", "--resume", str(saved / "cosine.npz"), "--dataset", "digits", "--epochs", "4", "--schedule",
                 "cosine", *CPU, "--save", str(tmp_path / "m.npz")]) == 0
    lr, cosine = rates(tmp_path / "m.npz"), get_schedule("cosine", 0.02, 4)
    assert lr[:2] == rates(saved / "cosine.npz") and lr[2:] == pytest.approx([cosine(2), cosine(3)])
