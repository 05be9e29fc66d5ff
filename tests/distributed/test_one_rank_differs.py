"""What one rank alone is given differently, under ``mpiexec -n 2`` and ``-n 3``: every rank gets
the same gpubp error naming the rank and what differs (was: a hang, an MPI_ERR_TRUNCATE
traceback, or weights silently unlike one process's or unlike each other's), and the
communicator stays usable: the next fit on it is one process's (float64, 1e-12).

* fit's settings on one rank (a wrapper passing per-rank flags): seed, shuffle (samples that
  overlap: a silent wrong answer), schedule, loss (ranks' weights apart), epochs, batch_size,
  patience (a hang or MPI_ERR_TRUNCATE); validation data on one rank only (was called "training
  data");
* a file one rank alone lacks (resume_from) and a callback failing on one rank (on_epoch_begin,
  on_epoch_end): was a hang, the others waiting in a collective; checkpoint_path, which rank 0
  alone writes, is rank 0's to check: its folder on rank 0 alone trains (was: refused, naming
  rank 1), on the other ranks alone stops every rank with rank 0's own error;
* a guard of the user's around fit passes fit's RankFailure as it is (was: re-agreed, naming rank 0);
* MPI not initialised or finalized: a DistributedError (was: Open MPI's abort message);
* ``gpubp train --distributed`` with another --seed on one rank: one line naming it (was: trained).
"""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_mpi_world import ROOT, launch, mpiexec

HERE = Path(__file__).resolve().parent

SETTINGS = {"seed": "seed: 1 on rank 0, 2 on rank {r}", "epochs": "epochs: 2 on rank 0, 3 on rank {r}",
            "batch_size": "batch_size: 4 on rank 0, 3 on rank {r}",
            "shuffle": "shuffle: True on rank 0, False on rank {r}",
            "schedule": "lr per epoch: None on rank 0, [0.1, 0.05] on rank {r}",
            "patience": "patience: None on rank 0, 1 on rank {r}",
            "loss": "loss: 'SoftmaxCrossEntropy()' on rank 0, 'MSE()' on rank {r}"}


@pytest.fixture(scope="module", params=[2, 3])
def outcome(request, tmp_path_factory):
    n = request.param
    out = tmp_path_factory.mktemp(f"one_rank_differs_{n}")
    code, output, _ = launch("worker_one_rank_differs.py", "cases", out, n=n, timeout=240)
    assert code == 0, output[-4000:]
    return n, [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)], out


def alike(seen, case):
    """The one outcome every rank had in ``case``: [error type, message, parameter digest, epochs]."""
    results = [r[case] for r in seen]
    assert all(r == results[0] for r in results), f"{case}: the ranks differ: {results}"
    return results[0]


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_setting_on_one_rank_is_refused_on_every_rank(outcome, setting):
    n, seen, _ = outcome
    kind, message, _, _ = alike(seen, setting)
    assert kind == "MismatchError", message
    assert message.startswith(f"rank {n - 1} of {n} "), message
    assert f"fit settings {SETTINGS[setting].format(r=n - 1)};" in message, message


def test_validation_data_on_one_rank_is_named_as_such(outcome):
    n, seen, _ = outcome
    kind, message, _, _ = alike(seen, "validation on one rank")
    assert kind == "MismatchError" and message.startswith(f"rank {n - 1} of {n} "), message
    assert "validation data: 'none' on rank 0, '10 samples of (4,), sha256" in message, message
    assert "training data" not in message


def test_a_file_one_rank_lacks_stops_every_rank(outcome):
    n, seen, out = outcome
    kind, message, _, epochs = alike(seen, "resume file on rank 0 only")
    assert kind == "RankFailure", message
    assert message.startswith(f"rank 1 of {n} failed during checking fit's arguments: CheckpointError: no "
                              f"checkpoint at {out}/here1/r.npz"), message


def test_a_checkpoint_folder_is_rank_0s_to_check(outcome):
    """checkpoint_path is written by rank 0 alone: a folder that only rank 0 has trains (was: refused,
    rank 1 named); one that only the other ranks have stops every rank with rank 0's own error."""
    n, seen, out = outcome
    assert alike(seen, "checkpoint folder on rank 0 only")[::3] == [None, 2]
    assert (out / "here0" / "sub" / "c.npz").is_file() and not (out / "here1" / "sub").exists()
    kind, message, _, epochs = alike(seen, "checkpoint folder on the other ranks only")
    assert kind == "InvalidValueError" and epochs is None, message
    assert message == f"fit: checkpoint path: the folder {out}/here0/other does not exist; create it first"


@pytest.mark.parametrize("hook, when", [("on_epoch_begin", "the start of epoch 1"),
                                        ("on_epoch_end", "the end of epoch 1")])
def test_a_callback_failing_on_one_rank_stops_every_rank_alike(outcome, hook, when):
    """Was: the failing rank left fit while the others waited in the next step's collective. Now
    every rank raises the same RankFailure, with the same parameters and history (the epoch undone)."""
    n, seen, _ = outcome
    kind, message, _, epochs = alike(seen, f"{hook} fails on one rank")
    assert kind == "RankFailure" and epochs == 0, message
    assert message.startswith(f"rank {n - 1} of {n} failed during {when}: OSError: rank {n - 1}'s callback "
                              f"cannot write its file"), message


def test_a_guard_around_fit_passes_fits_error_as_it_is(outcome):
    n, seen, _ = outcome
    kind, message, _, _ = alike(seen, "a guard around fit")
    assert kind == "RankFailure" and message.startswith(f"rank {n - 1} of {n} failed during the end of epoch 1"), \
        message


def test_the_communicator_is_still_in_step_after_every_failure(outcome):
    """After each refusal above, the same communicator trains as one process does (10 samples in
    batches of 4: a short last batch, which with 3 ranks leaves rank 2 no sample)."""
    n, seen, _ = outcome
    kind, message, _, epochs = alike(seen, "after the failures")
    assert kind is None and epochs == 2, message
    ranks, single = np.array(seen[0]["parameters"][0]), np.array(seen[0]["parameters"][1])
    assert np.linalg.norm(ranks - single) <= 1e-12 * np.linalg.norm(single)


@pytest.mark.parametrize("mode, words", [
    ("noinit", "DistributedError|MPI is not initialised in this process"),
    ("finalized", "DistributedError|MPI was finalized in this process"),
])
def test_a_communicator_without_mpi_running_is_a_gpubp_error(mode, words):
    pytest.importorskip("mpi4py")
    proc = subprocess.run([sys.executable, str(HERE / "worker_one_rank_differs.py"), mode], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.startswith(words), proc.stdout + proc.stderr[-2000:]
    assert "MPI_INIT" not in proc.stderr and "MPI_FINALIZE" not in proc.stderr, proc.stderr[-2000:]


def test_the_train_command_with_another_flag_on_one_rank_is_refused(tmp_path):
    """A wrapper passing ``--seed`` per rank: was trained on overlapping samples (a silent wrong
    answer); now one line from rank 0 names rank 1 and the setting, and every rank exits 1."""
    rows = "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(40))
    (tmp_path / "data.csv").write_text("a,b,y\n" + rows)
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "gpubp", "train", "--distributed", "--device", "cpu", "--epochs", "1",
               "--quiet", "--data", "data.csv", "--val-split", "0", "--seed"]
    proc = subprocess.Popen([*mpiexec(), "-n", "1", *command, "1", ":", "-n", "1", *command, "2"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"hung: {proc.communicate()[1][-2000:]}")
    assert proc.returncode != 0 and "epochs:" not in out, out + err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("gpubp train: error:")]
    assert len(lines) == 1 and re.search(r"rank 1 of 2 .*fit settings seed: 1 on rank 0, 2 on rank 1", lines[0]), \
        err[-2000:]
    assert "Traceback" not in err
