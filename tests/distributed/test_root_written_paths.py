"""Paths only rank 0 writes (gpubp train's --save, --log and --plot; fit's ``checkpoint_path``;
scripts/bench_distributed.py's --json) are
checked on rank 0 alone and its verdict is every rank's; paths every rank reads (--data, --resume)
are checked on every rank, naming the rank that fails. Each rank runs in a folder of its own
(``mpiexec -n 1 -wdir A ... : -n 1 -wdir B ...``), so a relative path names a folder that one rank
has and the other lacks, as on a cluster whose nodes have file systems of their own.

Was: the outputs were checked on every rank, so a folder missing on rank 1 alone refused a run that
rank 0 would have written ("rank 1 of 2 failed ...: --save: the folder ... does not exist"), and
rank 0's own refusal came wrapped as a rank failure; fit also claimed (locked) ``checkpoint_path``
on every rank."""
import sys
from pathlib import Path

import pytest

from gpubp.cli import main
from helpers import ROOT
from test_mpi_world import run_mpiexec

HERE = Path(__file__).resolve().parent
TRAIN = [sys.executable, "-m", "gpubp", "train", "--distributed", "--epochs", "1", "--quiet", "--device", "cpu"]


def ranks(tmp_path):
    """The two ranks' working folders."""
    folders = [tmp_path / f"rank{r}" for r in range(2)]
    for folder in folders:
        folder.mkdir()
    return folders


def per_rank(folders, argv, timeout=90):
    """``mpiexec`` with rank r running ``argv`` in ``folders[r]``: (returncode, stdout, stderr)."""
    contexts = [[":"] * bool(r) + ["-n", 1, "-wdir", folder, *argv] for r, folder in enumerate(folders)]
    return run_mpiexec([word for context in contexts for word in context], cwd=folders[0].parent, timeout=timeout)


def errors(err):
    return [line for line in err.splitlines() if line.startswith("gpubp train: error:")]


def test_outputs_in_a_folder_rank_0_alone_has_are_written_there(tmp_path):
    """Was: rank 1, without out/, refused --save (and --log, --plot) for every rank."""
    folders = ranks(tmp_path)
    (folders[0] / "out").mkdir()
    code, out, err = per_rank(folders, [*TRAIN, "--dataset", "xor", "--save", "out/m.npz", "--log", "out/log.jsonl",
                                        "--plot", "out/curves.png"])
    assert code == 0, out + err[-3000:]
    assert sorted(p.name for p in (folders[0] / "out").iterdir()) == ["curves.png", "log.jsonl", "m.npz"]
    assert sorted(p.name for p in folders[1].iterdir()) == []  # nothing made or locked on rank 1


@pytest.mark.parametrize("flag, path", [("--save", "out/m.npz"), ("--log", "out/log.jsonl"),
                                        ("--plot", "out/curves.png")])
def test_an_output_rank_0_cannot_write_stops_every_rank_with_its_error(tmp_path, flag, path):
    """Rank 0 has a file where out/ should be a folder, rank 1 the folder: every rank stops before
    training with rank 0's own error, in one line (was: wrapped as 'rank 0 of 2 failed ...')."""
    folders = ranks(tmp_path)
    (folders[0] / "out").write_text("not a folder")
    (folders[1] / "out").mkdir()
    code, out, err = per_rank(folders, [*TRAIN, "--dataset", "xor", flag, path])
    said = f"gpubp train: error: {flag}: {folders[0] / 'out'} is a file, not a folder, so {folders[0] / path} " \
           f"cannot be written"
    assert code == 1 and "epochs:" not in out, out + err[-3000:]
    assert errors(err) == [said], err[-3000:]
    assert "MPI_ABORT" not in err and "Traceback" not in err, err[-3000:]
    assert list((folders[1] / "out").iterdir()) == []


def test_fit_checks_checkpoint_path_on_rank_0_alone(tmp_path):
    """``here/`` only on rank 0: fit trains and rank 0 writes the checkpoint (was: refused on rank 1);
    ``there/`` only on rank 1: every rank raises rank 0's own error, alike."""
    folders = ranks(tmp_path)
    (folders[0] / "here").mkdir()
    (folders[1] / "there").mkdir()
    code, out, err = per_rank(folders, [sys.executable, HERE / "worker_root_paths.py", "here/run.npz",
                                        "there/run.npz"])
    assert code == 0, out + err[-3000:]
    lines = sorted(line for line in out.splitlines() if "|rank " in line)
    said = f"InvalidValueError|fit: checkpoint path: the folder {folders[0] / 'there'} does not exist; create it first"
    assert lines == ["here/run.npz|rank 0|ok", "here/run.npz|rank 1|ok",
                     f"there/run.npz|rank 0|{said}", f"there/run.npz|rank 1|{said}"], out + err[-3000:]
    assert [p.name for p in (folders[0] / "here").iterdir()] == ["run.npz"]
    assert list((folders[1] / "there").iterdir()) == [] and not (folders[1] / "here").exists()


@pytest.mark.parametrize("flag", ["--data", "--resume"])
def test_an_input_rank_1_lacks_stops_every_rank_naming_rank_1(tmp_path, flag):
    """Paths every rank reads stay checked on every rank: rank 1 without the file is named."""
    folders = ranks(tmp_path)
    if flag == "--data":
        (folders[0] / "in.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
        given = ["--data", "in.csv"]
    else:
        assert main(["train", "--dataset", "xor", "--epochs", "1", "--quiet", "--device", "cpu", "--save",
                     str(folders[0] / "in.npz")]) == 0
        given = ["--resume", "in.npz", "--epochs", "2"]
    code, out, err = per_rank(folders, [*TRAIN, *given])
    assert code == 1 and "epochs:" not in out, out + err[-3000:]
    lines = errors(err)
    assert len(lines) == 1 and "rank 1 of 2 failed" in lines[0] and "in." in lines[0], err[-3000:]
    assert "MPI_ABORT" not in err and "Traceback" not in err, err[-3000:]


@pytest.mark.parametrize("only", [0, 1])
def test_bench_distributed_json_is_rank_0s_to_check(tmp_path, only):
    """out/ on rank 0 alone: measured and written there (was: refused on rank 1); on rank 1 alone:
    rank 0's own refusal in one line, before any measurement."""
    folders = ranks(tmp_path)
    (folders[only] / "out").mkdir()
    code, out, err = per_rank(folders, [sys.executable, ROOT / "scripts" / "bench_distributed.py", "--quick",
                                        "--json", "out/r.json"], timeout=120)
    lines = [line for line in err.splitlines() if line.startswith("bench_distributed: error:")]
    if only == 0:
        assert code == 0 and not lines and (folders[0] / "out" / "r.json").is_file(), out + err[-3000:]
        return
    assert code == 1 and "all-reduce of" not in out, out + err[-3000:]
    assert lines == [f"bench_distributed: error: --json: the folder {folders[0] / 'out'} does not exist; create it "
                     f"first"], err[-3000:]
    assert "Traceback" not in err and "MPI_ABORT" not in err and list((folders[1] / "out").iterdir()) == []
