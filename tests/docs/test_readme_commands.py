"""The README's shell commands and the figures it gives for them, run as a user types them (on the
CPU, from a fresh folder): its first two commands and CI's, the own-data block, the built-in
datasets' accuracies."""
import os
import re
import shlex
import subprocess
import sys

from helpers import ROOT

README = (ROOT / "README.md").read_text()
TEXT = " ".join(README.split())
BASH = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
IRIS = ROOT / "tests" / "data" / "iris.csv"


def commands(block):
    """The block's command lines, each without its comment."""
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def gpubp(args, cwd):
    """``gpubp ARGS`` as this checkout's ``python -m gpubp``, on the CPU, in ``cwd``."""
    env = {**os.environ, "GPUBP_DEVICE": "cpu",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "gpubp", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def accuracy(stdout):
    return float(stdout.split("test accuracy:")[1].split()[0])


def test_the_first_two_commands_install_and_train_then_test_and_ci_runs_the_test_one():
    first, second = commands(BASH[0])
    assert first == 'pip install ".[cuda12]" && gpubp train'
    assert second == 'pip install ".[test,nvrtc]" && python -m pytest -q'
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert second in ci  # the exact line, not a variant of it


def test_the_first_command_trains_on_the_digits_to_the_accuracy_the_readme_states(tmp_path):
    train = commands(BASH[0])[0].split("&&")[1].split()
    assert train == ["gpubp", "train"]
    out = gpubp(train[1:] + ["--quiet"], tmp_path)
    assert "data: digits" in out and accuracy(out) >= 0.95  # "digits (>= 95% test accuracy in seconds)"
    assert "`digits` (>= 95% test accuracy in seconds)" in TEXT


def test_the_other_built_in_datasets_do_what_the_readme_says(tmp_path):
    assert "`spirals` (about 0.92)" in TEXT and "`xor` (trains and tests on the same 4 points)" in TEXT
    assert abs(accuracy(gpubp(["train", "--dataset", "spirals", "--quiet"], tmp_path)) - 0.92) <= 0.04
    assert "xor, 4 training / 0 validation / 4 test samples" in gpubp(["train", "--dataset", "xor", "--quiet"],
                                                                      tmp_path)


def test_the_own_data_block_runs_on_the_file_the_readme_suggests(tmp_path):
    """The README's three own-data commands, with its suggested iris file in place of the
    placeholders (`--data tests/data/iris.csv --target species`)."""
    assert "`--data tests/data/iris.csv --target species`" in TEXT
    train, predict, evaluate = (shlex.split(line) for line in commands(BASH[1]))
    swap = {"mydata.csv": str(IRIS), "new.csv": str(IRIS), "test.csv": str(IRIS), "label": "species"}
    train, predict, evaluate = ([swap.get(a, a) for a in cmd[1:]] for cmd in (train, predict, evaluate))
    gpubp(train + ["--quiet"], tmp_path)
    assert (tmp_path / "model.npz").exists()
    gpubp(predict, tmp_path)
    rows = (tmp_path / "preds.csv").read_text().splitlines()
    assert len(rows) == 151 and rows[0].startswith("prediction,")
    out = gpubp(evaluate, tmp_path)
    assert "loss:" in out and float(out.split("accuracy:")[1].split()[0]) >= 0.9
