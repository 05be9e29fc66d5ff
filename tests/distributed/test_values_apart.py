"""A data-parallel fit whose ranks' models would come apart is stopped on every rank with one
error naming the rank and what differs, instead of training on with other weights on each rank.

Was: a weight or the lr changed on one rank (by a callback) trained on silently: every rank
reported the same loss while their weights differed, and rank 0's alone was saved. A model with
BatchNorm (each rank normalised its share by the share's own statistics) or Dropout (every rank
drew the same mask for its share) trained without a word, 12% and 19% away from one process's
weights; both now take the single process's step, a rank without samples included. Each case runs ``worker_apart.py`` under
mpiexec with a timeout.
"""

import numpy as np
import pytest

from test_mpi_world import one_error, records


def run(tmp_path, case, n=2):
    seen = records("worker_apart.py", case, out=tmp_path, n=n)
    one_error(seen)  # the same error everywhere
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


@pytest.mark.parametrize("case", ["dropout", "batchnorm"])
def test_share_dependent_layers_train_alike_on_ranks_without_samples(tmp_path, case):
    """3 ranks, batches of 2: one rank holds no sample at any step, yet it takes its part in each step
    (Dropout's draw; BatchNorm's sums of the global batch's statistics and of the backward's sums), so
    every rank ends with the same parameters and buffers (Dropout's step 48 = 16 steps x 3 epochs), those
    of a single process's fit (float64, 1e-12); the end-of-epoch check compares buffers too. (Was:
    BatchNorm refused; the Dropout's step counter stayed behind on that rank.)"""
    seen = run(tmp_path, case, n=3)
    assert seen[0]["error"] == ["none", ""] and {s["epochs"] for s in seen} == {3}
    assert np.isfinite(seen[0]["params"]).all() and all(s["params"] == seen[0]["params"] for s in seen)
    assert all(s["buffers"] == seen[0]["buffers"] for s in seen)
    assert max(s["single"] for s in seen) <= 1e-12, [s["single"] for s in seen]
    if case == "dropout":
        assert seen[0]["buffers"]["1.step"] == 48
    else:
        assert seen[0]["buffers"]["1.running_var"] != [1.0, 1.0, 1.0]  # the estimates moved


def test_an_error_every_rank_raises_alike_is_that_error(tmp_path):
    """A last global batch of one sample, which BatchNorm cannot normalise, is refused before training
    on every rank alike: each raises the ShapeError one process raises (was: 'RankFailure: rank 0 of 3
    failed during checking fit's arguments: ShapeError: ... (ranks 0, 1, 2 failed)')."""
    seen = run(tmp_path, "one-sample", n=3)
    kind, message = seen[0]["error"]
    assert kind == "ShapeError", message
    assert message.startswith("fit: 32 sample(s) in batches of 31 make a batch of one sample at the end of every "
                              "epoch, which the model refuses in training"), message
    assert {s["epochs"] for s in seen} == {None}


def test_a_shard_per_rank_is_told_that_fit_shards_the_data_itself(tmp_path):
    """Was: 'training data: ... on rank 0, ... on rank 1; every rank must run the same ... data', which
    a user who gave each rank its own shard on purpose (Horovod's way) could only read as a bug."""
    seen = run(tmp_path, "shard")
    kind, message = seen[0]["error"]
    assert kind == "MismatchError" and "training data: '16 samples of (4,)" in message, message
    assert "data parallelism takes the whole training set on every rank and gives each rank its share of every " \
           "batch itself: give every rank the same data, not a shard per rank" in message, message
