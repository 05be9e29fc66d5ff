"""Path arguments the shell did not expand: '$HOME/m.npz' (single quotes, a Docker exec-form CMD, a
YAML file) reaches gpubp as written. Every path argument of every command refuses a $NAME, ${NAME}
or leading ~ that names nothing on disk as written, naming it and what the shell would have made
of it, before any work; a file or folder really named so is read and written as named."""
import os

import pytest

from gpubp.cli import main
from helpers import run_cli as run

TRAIN = ["train", "--device", "cpu", "--dataset", "xor", "--epochs", "1", "--quiet", "--hidden", "4"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """$HOME is tmp_path/home, holding a run's checkpoint m.npz and a CSV d.csv; the current folder is
    tmp_path/here, empty."""
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    assert main([*TRAIN, "--save", str(home / "m.npz")]) == 0
    (home / "d.csv").write_text("a,b\n0,0\n0,1\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RUN", "r1")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    monkeypatch.chdir(here)
    return home


@pytest.mark.parametrize("argv, word", [
    ([*TRAIN, "--save", "$HOME/m.npz"], "$HOME"),
    ([*TRAIN, "--save", "${HOME}/m2.npz"], "${HOME}"),
    ([*TRAIN, "--log", "$HOME/log.csv"], "$HOME"),
    ([*TRAIN, "--plot", "runs/$RUN.png"], "$RUN"),
    ([*TRAIN, "--resume", "$HOME/m.npz"], "$HOME"),
    (["train", "--data", "$HOME/d.csv"], "$HOME"),
    (["predict", "$HOME/m.npz", "x.csv"], "$HOME"),
    (["predict", "m.npz", "x.csv", "--out", "$NOT_SET_HERE/p.csv"], "$NOT_SET_HERE"),
    (["evaluate", "~/m.npz", "x.csv"], "~"),
    (["info", "$HOME/m.npz"], "$HOME"),
    (["vanishing", "--plot", "$HOME/v.png"], "$HOME"),
    (["bench", "--json", "$HOME/b.json"], "$HOME"),
])
def test_a_path_holding_what_the_shell_expands_is_refused_naming_it(home, capsys, argv, word):
    """Was: taken as written: --save '$HOME/m.npz' 'the folder ./$HOME does not exist', --log and --plot
    made a folder named '$HOME' (or '$RUN') in the current one, predict said 'no checkpoint at
    $HOME/m.npz', and evaluate '~/m.npz' read $HOME/m.npz where train --save '~/m.npz' wrote ./~/m.npz."""
    before = sorted(os.listdir(home))
    code, out, err = run(argv, capsys)
    assert code == 2 and "was not expanded" in err and f" {word} " in err, err
    assert "no file or folder is named so" in err
    assert os.listdir(".") == [] and sorted(os.listdir(home)) == before


def test_the_refusal_says_what_the_shell_would_have_made_of_it(home, capsys):
    code, _, err = run([*TRAIN, "--save", "$HOME/runs/$RUN.npz"], capsys)
    assert code == 2 and f"$HOME is {home}" in err and err.endswith(f"did you mean {home}/runs/r1.npz?"), err
    code, _, err = run([*TRAIN, "--save", "$NOT_SET_HERE/m.npz"], capsys)
    assert code == 2 and "$NOT_SET_HERE is not set here" in err, err


def test_a_file_or_folder_really_named_so_is_used_as_named(home, capsys):
    """A name on disk as written is the user's: a folder named '$HOME' takes the checkpoint, which is
    read back from there (as is one in a folder named '~', not the one in $HOME)."""
    os.mkdir("$HOME")
    os.mkdir("~")
    other = (home / "m.npz").read_bytes()
    for path in ("$HOME/m.npz", "~/m.npz"):
        code, out, err = run([*TRAIN, "--save", path], capsys)
        assert code == 0 and os.path.isfile(path), err
        code, out, err = run(["info", path], capsys)
        assert code == 0 and f"{path}\n" in out, err
    assert (home / "m.npz").read_bytes() == other
    code, out, err = run(["predict", "~/m.npz", str(home / "d.csv")], capsys)  # read from ./~, not $HOME
    assert code == 0 and out.startswith("prediction,"), err


def test_a_dollar_sign_that_is_no_variable_is_a_name(home, capsys):
    """'$1', '$' alone, 'a~b' are no variables a path argument could have meant: taken as written."""
    for path in ("price$1.npz", "cost$.npz", "a~b.npz", "~no_such_user_here.npz"):
        code, out, err = run([*TRAIN, "--save", path], capsys)
        assert code == 0 and os.path.isfile(path), (path, err)
