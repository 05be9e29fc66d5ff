"""A data-parallel fit whose ranks' models would come apart is stopped on every rank with one
error naming the rank and what differs, instead of training on with other weights on each rank.

Was: a weight or the lr changed on one rank (by a callback) trained on silently: every rank
reported the same loss while their weights differed, and rank 0's alone was saved. A model with
BatchNorm (each rank normalised its share by the share's own statistics, and the running
estimates came apart) trained without a word, 12% away from one process's weights (Dropout, which
drew the same mask for every rank's share, now draws the single process's mask: worker_parity.py). Each case runs ``worker_apart.py`` under
mpiexec with a timeout.
"""
import json

import numpy as np
import pytest

from test_mpi_world import launch


def run(tmp_path, case, n=2):
    code, output, _ = launch("worker_apart.py", case, tmp_path, n=n, timeout=90)
    assert code == 0, output[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
    assert len({tuple(s["error"]) for s in seen}) == 1, [s["error"] for s in seen]  # the same error everywhere
    assert all(s["after"] == seen[0]["after"] for s in seen)  # the communicator is still in step
    return seen


@pytest.mark.parametrize("case, n, words", [
    ("nudge", 2, ["the ranks' models came apart by the end of epoch 2: rank 1 of 2 holds other values than "
                  "rank 0 in parameter 0.W"]),
    ("nudge", 3, ["rank 2 of 3 holds other values than rank 0 in parameter 0.W"]),
    ("lr", 2, ["by the end of epoch 2: rank 1 of 2 holds other values than rank 0 in parameter 0.W",
               "optimizer lr: 0.1 on rank 0, 0.5 on rank 1"]),
])
def test_values_changed_on_one_rank_stop_every_rank(tmp_path, case, n, words):
    seen = run(tmp_path, case, n)
    kind, message = seen[0]["error"]
    assert kind == "MismatchError", message
    for w in words:
        assert w in message, message
    assert {s["epochs"] for s in seen} == {1}  # the epoch that came apart is undone: one whole epoch kept
    assert all(s["params"] == seen[0]["params"] for s in seen)  # back where the ranks last agreed


@pytest.mark.parametrize("case, words", [
    ("batchnorm", ["fit with comm: layer 1, BatchNorm(3, eps=1e-05, momentum=0.1), normalises each rank's share of a batch by the "
                   "share's own statistics", "train it in one process"]),
])
def test_layers_whose_step_depends_on_the_shares_are_refused(tmp_path, case, words):
    seen = run(tmp_path, case)
    kind, message = seen[0]["error"]
    assert kind == "InvalidValueError", message
    for w in words:
        assert w in message, message
    assert {s["epochs"] for s in seen} == {None}  # refused before any step


def test_a_dropout_trains_alike_on_ranks_without_samples(tmp_path):
    """3 ranks, batches of 2: one rank holds no sample at any step, yet its Dropout takes each step's
    draw, so every rank ends with the same parameters and Dropout step (48 = 16 steps x 3 epochs); the
    end-of-epoch check compares buffers too (was: the step counter stayed behind on that rank)."""
    seen = run(tmp_path, "dropout", n=3)
    assert seen[0]["error"] == ["none", ""] and {s["epochs"] for s in seen} == {3}
    assert np.isfinite(seen[0]["params"]).all() and all(s["params"] == seen[0]["params"] for s in seen)
    assert all(s["buffers"] == seen[0]["buffers"] for s in seen) and seen[0]["buffers"]["1.step"] == 48


def test_a_shard_per_rank_is_told_that_fit_shards_the_data_itself(tmp_path):
    """Was: 'training data: ... on rank 0, ... on rank 1; every rank must run the same ... data', which
    a user who gave each rank its own shard on purpose (Horovod's way) could only read as a bug."""
    seen = run(tmp_path, "shard")
    kind, message = seen[0]["error"]
    assert kind == "MismatchError" and "training data: '16 samples of (4,)" in message, message
    assert "data parallelism takes the whole training set on every rank and gives each rank its share of every " \
           "batch itself: give every rank the same data, not a shard per rank" in message, message
