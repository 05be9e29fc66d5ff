"""A model, communicator or Ctrl-C that one rank alone has in a data-parallel fit stops every
rank with the same error, before any gradient collective, and leaves the communicator usable.

Was: a layer inserted or replaced, or the model moved, on one rank ended in MPI_ERR_TRUNCATE on
one rank while the other hung in the gradient all-reduce (or a StateError on one rank alone); a
communicator closed on one rank, or a Ctrl-C during fit's argument checks, left the others
waiting in a collective. Each case runs ``worker_layout.py`` under mpiexec with a timeout.
"""

import pytest

from test_mpi_world import one_error, records


def run(tmp_path, case, n=2):
    seen = records("worker_layout.py", case, out=tmp_path, n=n)
    assert all(s["after"] == seen[0]["after"] for s in seen)  # the next fit ran, alike on every rank
    return one_error(seen)


@pytest.mark.parametrize("case, n, words", [
    ("insert", 2, ["the model on rank 1 of 2 differs from rank 0's at the end of the start of epoch 2",
                   "model layer 3: (none: 3 layers) on rank 0, 'Dense (cpu float64)' on rank 1 (3 layers on "
                   "rank 0, 4 on rank 1); parameter 2.W: (3, 2) on rank 0, (3, 3) on rank 1",
                   "no gradient was summed"]),
    ("insert", 3, ["the model on rank 2 of 3 differs from rank 0's at the end of the start of epoch 2",
                   "(3 layers on rank 0, 4 on rank 2)"]),
    ("widen", 2, ["the model on rank 1 of 2 differs from rank 0's at the end of epoch 1, step 1",
                  "parameter 0.W: (4, 3) on rank 0, (4, 5) on rank 1"]),
    ("retype", 2, ["the model on rank 1 of 2 differs from rank 0's at the end of epoch 1, step 1",
                   "model layer 0: 'Dense (cpu float64)' on rank 0, 'Dense (cpu float32)' on rank 1"]),
])
def test_a_model_changed_on_one_rank_is_refused_on_every_rank(tmp_path, case, n, words):
    kind, message = run(tmp_path, case, n)
    assert kind == "MismatchError", message
    for w in words:
        assert w in message, message


def test_a_model_moved_on_one_rank_before_an_epoch_is_refused_on_every_rank(tmp_path):
    """Was: fit's check at an epoch's start refused it on rank 1 alone; rank 0 hung in step 0's guard."""
    kind, message = run(tmp_path, "move")
    assert kind == "RankFailure", message
    assert message.startswith("rank 1 of 2 failed during the start of epoch 2: StateError: fit: the model "
                              "moved to cpu float32"), message


@pytest.mark.parametrize("case, n, where", [
    ("close", 2, "checking fit's arguments"), ("close", 3, "checking fit's arguments"),
    ("close-mid", 2, "the end of epoch 1"),  # closed in on_epoch_end, inside that guard
])
def test_a_communicator_closed_on_one_rank_is_refused_on_every_rank(tmp_path, case, n, where):
    kind, message = run(tmp_path, case, n)
    assert kind == "StateError", message
    assert message.startswith(f"the communicator of rank {n - 1} of {n} is closed (comm.close()), found after "
                              f"{where}; every rank stopped"), message


@pytest.mark.parametrize("case", ["interrupt", "interrupt-start"])
def test_a_ctrl_c_during_fits_checks_on_one_rank_interrupts_every_rank(tmp_path, case):
    """Was: KeyboardInterrupt on rank 1 alone, out of fit's checks (or out of its start, while it made its
    step plans), while rank 0 waited in their guard (or in the first step's)."""
    kind, message = run(tmp_path, case)
    assert kind == "KeyboardInterrupt", message
