"""A planned update whose parameters outnumber the plan's spent buffers: its NumPy kernel runs in
blocks of ``LENT_BLOCK``, each reusing one piece of those buffers (``_blocks.sizes``), and where it is shared among threads,
each thread takes its own piece of them (``ScratchIn.shares``), so no thread makes scratch of its own."""
import numpy as np
import pytest

from gpubp.backend import _blocks
from gpubp.backend.kernels import scratch
from gpubp.network import mlp
from gpubp.optim import SGD, Adam
from gpubp.bench.memory import traced_allocation
from gpubp.plan import StepPlan

from helpers import assert_eager_steps_match


@pytest.fixture
def fresh_threads(monkeypatch):
    """``renew()``: the blocked executor's threads made anew from then on (none with scratch of its own
    from earlier tests); they are shut down after the test."""
    made = []

    def renew():
        made.append({})
        monkeypatch.setattr(_blocks, "_pool", made[-1])
    yield renew
    for pools in made:
        for pool in pools.values():
            pool.shutdown()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("make", [lambda: SGD(lr=0.05), lambda: Adam(lr=1e-3)], ids=["sgd", "adam"])
def test_update_blocks_fit_the_spent_buffers(make, threads, monkeypatch, fresh_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    models = [mlp(512, [512, 512, 512], 512, "sigmoid", seed=0) for _ in range(2)]  # 1.05 M parameters
    n = sum(p.size for p in models[0].parameters().values())
    assert n >= _blocks.THREADED  # shared among threads where there are two
    rng = np.random.default_rng(0)
    X, y = (models[0].backend.asarray(rng.normal(size=(8, 512))) for _ in range(2))
    plan = StepPlan(models[0], "mse", make(), X.shape)
    assert plan.arena.size < n // 4  # a batch of 8: far fewer activations than parameters
    plan.step(X, y)  # the first step makes the optimizer's slots
    fresh_threads()  # any scratch of a thread's own would be made in the step below
    scratch.forget_scratch()
    peak = traced_allocation(lambda: plan.step(X, y), 1)[0]
    assert peak < _blocks.LENT_BLOCK * 4, peak  # not one block of float32 scratch, in any thread
    assert not scratch.held()
    assert_eager_steps_match(*models, make(), X, y)


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.05), lambda: Adam(lr=1e-3)], ids=["sgd", "adam"])
def test_every_block_of_a_planned_update_reuses_one_piece_of_the_arena(make, monkeypatch, fresh_threads):
    """The update's scratch is one block's worth at the arena's start, written again by every block (it
    stays in this core's cache), however much more of the arena is spent: the rest is left as it was."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fresh_threads()
    models = [mlp(512, [512, 512, 512], 512, "sigmoid", seed=0) for _ in range(2)]
    rng = np.random.default_rng(0)
    X, y = (models[0].backend.asarray(rng.normal(size=(128, 512))) for _ in range(2))
    plan = StepPlan(models[0], "mse", make(), X.shape)
    used = plan.optimizer.kernel.scratch * _blocks.LENT_BLOCK
    assert plan.arena.size > 2 * used  # room for larger blocks, which the update does not take
    for _ in range(2):  # the first step makes the optimizer's slots
        models[0].zero_grad()
        plan.run(X, y)
        plan.arena[...] = np.nan  # spent: the update only writes its scratch here
        plan.update()
        assert np.isnan(plan.arena[used:]).all()
        assert not np.isnan(plan.arena[:_blocks.LENT_BLOCK]).any()  # written by every rule
    assert_eager_steps_match(*models, make(), X, y)
