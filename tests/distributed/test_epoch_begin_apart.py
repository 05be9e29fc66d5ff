"""A model whose layers an ``on_epoch_begin`` callback changed on one rank alone is refused on every
rank before the epoch's first step, naming the rank and the layers that differ. BatchNorm sums over
the ranks inside the forward, so the layout must agree before the step's first sum, not only before
its gradient all-reduce. (Was: every rank hung, one in BatchNorm's sum of its statistics, the other
in the step guard's all-reduce, until mpiexec was killed.) Runs ``worker_epoch_begin_apart.py``
under mpiexec with a timeout."""
import json

import pytest

from test_mpi_world import launch


@pytest.mark.parametrize("case", ["remove", "insert"])
@pytest.mark.parametrize("plan", ["plan", "eager"])
def test_layers_changed_on_one_rank_at_an_epochs_start_stop_every_rank(tmp_path, case, plan):
    code, output, _ = launch("worker_epoch_begin_apart.py", case, plan, tmp_path, n=2, timeout=60)
    assert code == 0, output[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert seen[0]["error"] == seen[1]["error"], [s["error"] for s in seen]
    kind, message = seen[0]["error"]
    assert kind == "MismatchError", message
    assert message.startswith("the model on rank 1 of 2 differs from rank 0's at the end of the start of epoch 2"), \
        message
    assert "model layer" in message and "no gradient was summed" in message, message
