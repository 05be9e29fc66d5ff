"""A rank that ends its program while another waits for it in fit (a script that calls fit on
some ranks only, ``if comm.is_root: fit(..., comm=comm)``) ends every rank with one line naming it.

Was: the rank in fit waited in its first collective for ever (mpiexec never returned); after
7b1cebe, still so when the rank that left ended with its own ``MPI.Finalize()`` (no exit hook ran
before it)."""
import pytest

from test_mpi_world import launch


@pytest.mark.parametrize("case, gone, waiting", [("skip", 1, 0), ("skip0", 0, 1), ("finalize", 1, 0)])
def test_a_rank_that_ends_without_fit_ends_every_rank(case, gone, waiting):
    code, output, seconds = launch("worker_rank_leaves.py", case, timeout=60)
    assert code != 0 and f"rank {gone} ended" in output and "trained" not in output, output[-3000:]
    assert f"rank {waiting} of 2: uncaught DistributedError: rank {gone} of 2 ended its program while rank " \
           f"{waiting} waited for it during checking fit's arguments" in output, output[-3000:]
