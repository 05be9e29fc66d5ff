"""An output flag given /dev/stdout while stdout goes to another program (`gpubp bench --json
/dev/stdout | jq`): the link leads to a pipe, which has no name to write a file at. Was: the whole
benchmark (training, for --log) ran, then "error: FileNotFoundError: No such file or directory",
naming neither the flag nor the path; now refused before any work, saying what it leads to."""
import os

import numpy as np
import pytest

from helpers import run_cli as run

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc/self/fd links")


@pytest.fixture
def pipe_path():
    r, w = os.pipe()
    yield f"/proc/self/fd/{w}"
    os.close(r)
    os.close(w)


def never(*args, **kwargs):
    pytest.fail("the work began before the output was refused")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipes")
    np.savez(d / "t.npz", X=np.random.default_rng(0).normal(size=(20, 3)), y=np.arange(20) % 2)
    return d / "t.npz"


@pytest.mark.parametrize("flag", ["--log", "--save"])
def test_train_refuses_an_output_that_leads_to_a_pipe_before_training(table, pipe_path, flag, capsys, monkeypatch):
    monkeypatch.setattr("gpubp.cli.train.fit", never)
    code, _, last = run(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--data", str(table),
                         flag, pipe_path], capsys)
    assert code == 1 and f"{flag}: {pipe_path} leads to " in last and "a pipe, a socket" in last, last


def test_bench_refuses_json_that_leads_to_a_pipe_before_measuring(pipe_path, capsys, monkeypatch):
    monkeypatch.setattr("gpubp.bench.run", never)
    code, _, last = run(["bench", "--device", "cpu", "--json", pipe_path], capsys)
    assert code == 1 and f"--json: {pipe_path} leads to " in last and "pipe:[" in last, last


def test_predict_refuses_out_that_leads_to_a_pipe(table, pipe_path, tmp_path, capsys):
    assert run(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--data", str(table),
                "--save", str(tmp_path / "m.npz")], capsys)[0] == 0
    code, out, last = run(["predict", str(tmp_path / "m.npz"), str(table), "--out", pipe_path, "--device", "cpu"],
                          capsys)
    assert code == 1 and out == "" and f"--out: {pipe_path} leads to " in last, last
