"""A model whose layers an ``on_epoch_begin`` callback changed on one rank alone is refused on every
rank before the epoch's first step, naming the rank and the layers that differ. BatchNorm sums over
the ranks inside the forward, so the layout must agree before the step's first sum, not only before
its gradient all-reduce. (Was: every rank hung, one in BatchNorm's sum of its statistics, the other
in the step guard's all-reduce, until mpiexec was killed.) Runs ``worker_epoch_begin_apart.py``
under mpiexec with a timeout."""
import pytest

from test_mpi_world import one_error, records


@pytest.mark.parametrize("case", ["remove", "insert"])
@pytest.mark.parametrize("plan", ["plan", "eager"])
def test_layers_changed_on_one_rank_at_an_epochs_start_stop_every_rank(tmp_path, case, plan):
    kind, message = one_error(records("worker_epoch_begin_apart.py", case, plan, out=tmp_path, n=2, timeout=60))
    assert kind == "MismatchError", message
    assert message.startswith("the model on rank 1 of 2 differs from rank 0's at the end of the start of epoch 2"), \
        message
    assert "model layer" in message and "no gradient was summed" in message, message
