"""A rank failing in a layer before a BatchNorm, in a step where the other ranks hold one sample in
all, stops every rank with its own error. It joins the step's sums with zeros (``shares.complete``),
so the others' BatchNorm sees a global batch of one value per channel: its running estimates are left
as they were (the step is undone with its epoch). (Was: the other ranks raised ZeroDivisionError in
the running variance's m / (m - 1), then again while completing the step's sums, and every rank hung.)
Runs ``worker_fails_before_bn.py`` under mpiexec with a timeout."""
import pytest

from test_mpi_world import one_error, records


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("momentum", ["0.1", "None"])
def test_a_rank_failing_before_batchnorm_stops_every_rank_with_its_error(tmp_path, momentum, n):
    seen = records("worker_fails_before_bn.py", momentum, out=tmp_path, n=n, timeout=60)
    kind, message = one_error(seen)
    assert kind == "RankFailure", message
    assert message.startswith(f"rank 0 of {n} failed during epoch 1, step 2: ValueError: the layer before "
                              f"BatchNorm failed on rank 0; every rank stopped"), message
    assert all(s["after"] == [float(n)] for s in seen)  # the communicator is still in step
