"""A loss that becomes NaN/Inf on one rank reaches every rank's parameters through the summed
gradient, so the epoch's loss is not finite everywhere; the error every rank raises names where it
began: the step, and the rank whose samples overflowed (was: the same error on every rank, naming
none), or says that every rank's did at once (the learning rate). Runs
``worker_nonfinite_origin.py`` under mpiexec with a timeout."""
import pytest

from test_mpi_world import one_error, records

from gpubp.distributed.sharding import shard_bounds


@pytest.mark.parametrize("plan", ["plan", "eager"])
@pytest.mark.parametrize("n", [2, 3])
def test_the_rank_whose_samples_overflow_is_named(tmp_path, plan, n):
    holder = next(r for r in range(n) if shard_bounds(4, r, n)[0] <= 2 < shard_bounds(4, r, n)[1])  # sample 6
    seen = records("worker_nonfinite_origin.py", "sample", plan, out=tmp_path, n=n)
    kind, message = one_error(seen)
    assert kind == "NumericalError", message
    assert message.startswith(f"training loss became nan in epoch 1; it was first not finite at epoch 1, step 1 "
                              f"on rank {holder} of {n} alone"), message
    assert all(s["kept"] for s in seen)  # restored to the start of the epoch


def test_a_loss_that_overflows_on_every_rank_names_no_rank(tmp_path):
    kind, message = one_error(records("worker_nonfinite_origin.py", "rate", "plan", out=tmp_path, n=2))
    assert kind == "NumericalError" and "it was first not finite at epoch 1, step 1 on every rank at once" in message
    assert "rank 0" not in message and "rank 1" not in message

