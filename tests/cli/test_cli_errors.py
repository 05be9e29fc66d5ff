"""Every CLI mistake is one line on stderr and a non-zero exit, refused before any work;
a reader that leaves early (`gpubp check | head -2`) ends the command quietly."""
import subprocess
import sys

import pytest

import gpubp
from gpubp.cli import main


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "damaged.npz").write_bytes(b"PK\x03\x04" + bytes(40))
    return tmp_path


@pytest.mark.parametrize("argv, code, words", [
    (["gradcheck", "--widths", "4"], 1, "--widths wants at least two widths.* got 4"),
    (["gradcheck", "--eps", "0"], 2, "argument --eps: expected a finite number > 0, got '0'"),
    (["gradcheck", "--eps", "-1"], 2, "expected a finite number > 0, got '-1'"),
    (["gradcheck", "--eps", "inf"], 2, "got 'inf'"),
    (["gradcheck", "--seed", "-2"], 2, "argument --seed: expected a whole number >= 0, got '-2'"),
    (["parity", "cpu", "cpu/float64", "--steps", "0"], 2, "argument --steps: expected a whole number >= 1"),
    (["parity", "cpu", "cpu/float64", "--batch-size", "0"], 2, "argument --batch-size"),
    (["parity", "cpu", "cpu/float64", "--perturb", "abc"], 1, "--perturb wants LAYER:STEP"),
    (["parity", "cpu", "cpu/float64", "--perturb", "9:0"], 1, r"--perturb: layer must be in \[0, 4\]"),
    (["parity", "cpu", "cpu/float64", "--perturb", "0:7"], 1, r"--perturb: step must be in \[0, 4\]"),
    (["parity", "cpu", "cpu/float64", "--perturb", "0:0:Q"], 1, "quantity must be one of Y, dX, dW, db"),
    (["parity", "cpu"], 1, "give two backends"),
    (["train", "--seed", "-1"], 2, "argument --seed: expected a whole number >= 0"),
    (["train", "--lr", "nan"], 2, "argument --lr: expected a finite number > 0"),
    (["train", "--save", "missing/m.npz"], 1, "--save: the folder .*missing does not exist"),
    (["train", "--save", "file.txt/m.npz"], 1, "file.txt is a file, not a folder"),
    (["train", "--plot", "file.txt/curves.png"], 1, "--plot: .*file.txt is a file, not a folder"),
    (["train", "--plot", "."], 1, "--plot: .* is a folder"),
    (["vanishing", "--plot", "file.txt/v.png"], 1, "file.txt is a file, not a folder"),
    (["vanishing", "--epochs", "-1"], 2, "argument --epochs: expected a whole number >= 0"),
    (["info", "damaged.npz"], 1, "damaged.npz"),
    (["info", "missing.npz"], 1, "no checkpoint at missing.npz"),
])
def test_mistakes_are_one_line_and_a_nonzero_exit(files, capsys, argv, code, words):
    try:
        got = main([*argv, "--device", "cpu"] if argv[0] in ("train", "vanishing") else argv)
    except SystemExit as exc:  # argparse: usage, then one error line
        got = exc.code
    out, err = capsys.readouterr()
    assert got == code
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"gpubp {argv[0]}: error: ") and "Traceback" not in err
    import re
    assert re.search(words, last), last
    assert "epochs:" not in out and "first/last layer" not in out  # refused before any work
    assert sorted(p.name for p in files.iterdir()) == ["damaged.npz", "file.txt"]


class ClosedPipe:
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_is_quiet_in_process(monkeypatch, capsys):
    monkeypatch.setattr("gpubp.tools.doctor.run_checks", lambda expect: [])
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["check", "--cpu-only"]) == 1
    assert capsys.readouterr().err == ""


def test_a_reader_that_leaves_early_gets_no_traceback():
    child = subprocess.Popen([sys.executable, "-m", "gpubp", "info"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.close()  # like `| head -0`: every write meets a closed pipe
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 1 and err == ""


def test_a_gpubp_warning_is_one_line_on_stderr_and_others_stay_pythons(capsys, monkeypatch):
    import warnings
    from gpubp import cli

    def run(args):
        warnings.warn("the checkpoint was saved after Ctrl-C", gpubp.GpubpWarning)
        warnings.warn("a library's own warning", DeprecationWarning)
        return 0
    monkeypatch.setattr(cli.info, "run", run)
    with pytest.warns(DeprecationWarning, match="a library's own warning"):  # shown as Python shows it
        assert cli.main(["info"]) == 0
    assert capsys.readouterr().err == "gpubp info: warning: the checkpoint was saved after Ctrl-C\n"
