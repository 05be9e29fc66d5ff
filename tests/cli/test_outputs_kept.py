"""Nothing a user made is replaced by a command's output: --out, --plot, --json and gpu_record's
--out replace only a file of their own kind that gpubp wrote (a rerun replaces its own output),
or any file with --overwrite; anything else is refused in one line before any work. Before,
`predict --out train.csv` replaced the user's data, `--plot` any figure, `--json` any file."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gpubp
from gpubp.cli import main
from helpers import ROOT, run_cli as run


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model trained by gpubp train on a small own table, and that table."""
    d = tmp_path_factory.mktemp("outputs")
    rng = np.random.default_rng(0)
    np.savez(d / "table.npz", X=rng.normal(size=(20, 3)), y=np.arange(20) % 2)
    assert main(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--data", str(d / "table.npz"),
                           "--save", str(d / "m.npz")]) == 0
    return d


def never(*args, **kwargs):
    pytest.fail("the work began before the output was refused")


def predict(model, out, *extra, capsys):
    return run(["predict", str(model / "m.npz"), str(model / "table.npz"), "--out", str(out), "--device", "cpu",
                *extra], capsys)


def test_predict_keeps_the_users_data_at_out(model, tmp_path, capsys, monkeypatch):
    data = tmp_path / "train.csv"
    data.write_text("x1,x2,x3,label\n1,2,3,0\n")
    monkeypatch.setattr("gpubp.cli.predict.load", never)
    code, out, last = predict(model, data, capsys=capsys)
    assert code == 1 and out == "" and data.read_text() == "x1,x2,x3,label\n1,2,3,0\n"
    assert last.startswith(f"gpubp predict: error: --out: {data} holds a text of 23 bytes starting 'x1,x2,x3,label', "
                           f"not a predictions CSV written by gpubp") and "pass --overwrite to replace it" in last, last
    monkeypatch.undo()
    code, _, _ = predict(model, data, "--overwrite", capsys=capsys)
    assert code == 0 and data.read_text().startswith("prediction,p_0,p_1\n")


def test_predict_run_twice_replaces_its_own_output(model, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert predict(model, out, capsys=capsys)[0] == 0
    first = out.read_text()
    out.write_text(first.splitlines()[0] + "\n0,0.5,0.5\n")  # an earlier run's predictions, of other data
    assert predict(model, out, capsys=capsys)[0] == 0 and out.read_text() == first


def test_predict_overwrite_without_out_is_refused(model, capsys):
    code, out, last = run(["predict", str(model / "m.npz"), str(model / "table.npz"), "--overwrite",
                           "--device", "cpu"], capsys)
    assert code == 1 and out == "" and "--overwrite lets --out replace a file; give --out PATH too" in last


@pytest.mark.parametrize("header", ["prediction", "output", "output_0,output_1", "prediction,p_a,p_b"])
def test_each_header_predict_writes_is_recognised(tmp_path, header):
    from gpubp.cli.predict import is_predictions
    path = tmp_path / "p.csv"
    path.write_text(header + "\n1\n")
    assert is_predictions(path)
    path.write_text(header + ",label\n1\n")
    assert not is_predictions(path)


def test_vanishing_run_twice_with_its_default_plot_replaces_its_own(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    monkeypatch.chdir(tmp_path)
    argv = ["vanishing", "--device", "cpu", "--depth", "2", "--width", "4"]
    assert run(argv, capsys)[0] == 0
    png = tmp_path / "vanishing_gradients.png"
    assert gpubp.tools.plot.is_plot(png)
    code, out, _ = run(argv, capsys)
    assert code == 0 and f"plot: {png}" in out and list(tmp_path.iterdir()) == [png]


def test_vanishing_keeps_someone_elses_png(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    png = tmp_path / "figure.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    monkeypatch.setattr("gpubp.cli.vanishing.vanishing_experiment", never)
    code, out, last = run(["vanishing", "--device", "cpu", "--plot", str(png)], capsys)
    assert code == 1 and out == "" and png.read_bytes() == b"\x89PNG\r\n\x1a\n" + bytes(32)
    assert f"--plot: {png} holds a PNG image of 40 bytes, not a plot written by gpubp" in last
    assert "pass --overwrite to replace it" in last
    monkeypatch.undo()
    code, out, _ = run(["vanishing", "--device", "cpu", "--depth", "2", "--width", "4", "--plot", str(png),
                        "--overwrite"], capsys)
    assert code == 0 and f"plot: {png}" in out and gpubp.tools.plot.is_plot(png)


def test_vanishing_overwrite_with_no_plot_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, last = run(["vanishing", "--device", "cpu", "--no-plot", "--overwrite"], capsys)
    assert code == 1 and out == "" and "--overwrite lets --plot replace a file, and --no-plot writes none" in last


def test_train_plot_keeps_someone_elses_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    png = tmp_path / "curves.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    code, out, last = run(["train", "--dataset", "xor", "--epochs", "1", "--device", "cpu", "--quiet",
                           "--plot", str(png)], capsys)
    assert code == 1 and "epochs" not in out and png.read_bytes() == b"\x89PNG\r\n\x1a\n" + bytes(32)
    assert f"--plot: {png} holds a PNG image of 40 bytes, not a plot written by gpubp" in last


def test_train_keeps_someone_elses_log_before_reading_data_and_overwrite_frees_both(tmp_path, capsys, monkeypatch):
    """--log over a file that is not an epoch log is refused before the data is read (it was refused
    by the log itself after that, naming overwrite=True); --overwrite frees --log and --plot alike."""
    log = tmp_path / "notes.csv"
    log.write_text("x1,x2,label\n1,2,0\n")
    with monkeypatch.context() as m:
        m.setattr("gpubp.cli.train.prepare", never)
        code, out, last = run(["train", "--dataset", "xor", "--epochs", "1", "--device", "cpu", "--quiet",
                               "--log", str(log)], capsys)
    assert code == 1 and log.read_text() == "x1,x2,label\n1,2,0\n"
    assert f"--log: {log} holds" in last and "pass --overwrite to replace it" in last
    extra = []
    if importlib.util.find_spec("matplotlib") is not None:
        png = tmp_path / "curves.png"
        png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
        extra = ["--plot", str(png)]
    code, out, last = run(["train", "--dataset", "xor", "--epochs", "2", "--device", "cpu", "--quiet",
                           "--log", str(log), "--overwrite", *extra], capsys)
    assert code == 0, last
    assert log.read_text().startswith("epoch,loss") and len(log.read_text().splitlines()) == 3
    if extra:
        assert png.stat().st_size > 40 and f"plot: {png}" in out


RESULT = {"machine": {"device": "cpu"}, "threads": 1, "quick": True}


@pytest.fixture
def fake_bench(monkeypatch):
    """gpubp bench without measuring: ``run`` gives RESULT, ``table`` a line."""
    monkeypatch.setattr("gpubp.bench.run", lambda *a, **k: dict(RESULT))
    monkeypatch.setattr("gpubp.bench.table", lambda result: "table")


@pytest.mark.parametrize("content, what", [
    ('{"my": "settings"}', "a text of 18 bytes starting '{\"my\": \"settings\"}'"),
    (json.dumps({**RESULT, "argv": []}), "a text of"),  # a GPU record (scripts/gpu_record.py)
])
def test_bench_json_keeps_a_file_it_did_not_write(tmp_path, capsys, monkeypatch, content, what):
    path = tmp_path / "settings.json"
    path.write_text(content)
    monkeypatch.setattr("gpubp.bench.run", never)
    code, out, last = run(["bench", "--device", "cpu", "--json", str(path)], capsys)
    assert code == 1 and out == "" and path.read_text() == content
    assert f"--json: {path} holds {what}" in last and "not a benchmark JSON written by gpubp" in last, last


def test_bench_json_replaces_its_own_and_with_overwrite_any(tmp_path, capsys, fake_bench):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({**RESULT, "threads": 8}))  # an earlier benchmark's
    assert run(["bench", "--device", "cpu", "--json", str(path)], capsys)[0] == 0
    assert json.loads(path.read_text()) == RESULT
    path.write_text("notes")
    assert run(["bench", "--device", "cpu", "--json", str(path), "--overwrite"], capsys)[0] == 0
    assert json.loads(path.read_text()) == RESULT
    code, _, last = run(["bench", "--device", "cpu", "--overwrite"], capsys)
    assert code == 1 and "--overwrite lets --json replace a file; give --json PATH too" in last


def gpu_record(out, *extra):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_record.py"), "--device", "cpu",
                           "--out", str(out), "--skip", "tests,parity,kernels,mlp,conv,scaling", *extra],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_gpu_record_out_replaces_an_earlier_record_but_keeps_other_files(tmp_path):
    out = tmp_path / "record"
    assert gpu_record(out).returncode == 0 and gpu_record(out).returncode == 0  # a rerun into the same folder
    assert json.loads((out / "record.json").read_text())["skipped_phases"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pytest.log").write_text("my own test log\n")
    bad = gpu_record(mine)
    assert bad.returncode == 2 and (mine / "pytest.log").read_text() == "my own test log\n"
    assert f"--out: {mine / 'pytest.log'} holds a text of 16 bytes starting 'my own test log', not the pytest.log " \
           f"of a GPU record written by gpubp" in bad.stderr and "--overwrite" in bad.stderr
    assert list(mine.iterdir()) == [mine / "pytest.log"]  # nothing begun
    assert gpu_record(mine, "--overwrite").returncode == 0 and (mine / "record.json").exists()
