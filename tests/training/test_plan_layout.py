"""Where a step plan puts its deltas (gpubp/plan/layout.py): replayed step by step here, no region is
written while what it held is still to be read, nothing outgrows its region, and the model's
output is never written; a plan of sigmoids keeps its deltas in the layer outputs."""
import numpy as np
import pytest

import gpubp
from gpubp.network import mlp
from gpubp.optim import SGD
from gpubp.plan import StepPlan, layout

INF = float("inf")


def chain(rng, n):
    """A random chain of ``n`` layers as ``StepPlan._place`` describes one to ``layout.place``."""
    sizes, passes, sources, reads, dx, source, size_in = [], [], [], [], [], None, int(rng.integers(1, 20))
    dx_in = size_in
    for i in range(n):
        p = i > 0 and rng.uniform() < 0.2
        own = not p and rng.uniform() < 0.85  # else an output outside the arena (another dtype)
        size = int(rng.integers(1, 20))
        passes.append(p)
        sources.append(source)
        sizes.append(size if own else None)
        reads.append(tuple(r for r in ("X", "Y") if rng.uniform() < 0.5))
        dx.append(None if p or (i == 0 and rng.uniform() < 0.5) else dx_in)
        if not p:
            source, dx_in = (i if own else None), size
    dout, work = dx_in, int(rng.integers(0, 12))
    return sizes, passes, sources, reads, dx, dout, work


def replay(sizes, passes, sources, reads, dx, dout, work, placed):
    """Each region's contents as (written at, last read at, size), in the step's order: forward
    0..n-1, the loss at n, backward of layer t at 2n - t."""
    n, contents = len(sizes), {}

    def region(i):  # layer i's output buffer (its input's where it passes that on)
        return (i if sizes[i] is not None else None) if not passes[i] else sources[i]

    def reader(t):  # the backward step that reads what step t writes as its dY
        below = next((i for i in range(t - 1, -1, -1) if not passes[i]), 0)
        return 2 * n - below

    for j in range(n):
        if sizes[j] is not None:
            last = INF if j == region(n - 1) else max(
                [2 * n - i for i in range(n) if ("X" in reads[i] and sources[i] == j)
                 or ("Y" in reads[i] and region(i) == j)], default=j)
            contents.setdefault(("output", j), []).append((j, last, sizes[j]))
    contents.setdefault(placed.dout, []).append((n, reader(n), dout))
    if work:
        contents.setdefault(placed.work, []).append((n, n, work))
    for t in range(n):
        if dx[t] is not None:
            contents.setdefault(placed.dx[t], []).append((2 * n - t, reader(t), dx[t]))
    return contents


@pytest.mark.parametrize("seed", range(300))
def test_no_region_is_written_while_its_contents_are_still_read(seed):
    rng = np.random.default_rng(seed)
    args = chain(rng, int(rng.integers(1, 8)))
    sizes = args[0]
    placed = layout.place(*args)
    assert placed.work is None if not args[6] else placed.work is not None
    assert [at is None for at in placed.dx] == [d is None for d in args[4]]
    for region, held in replay(*args, placed).items():
        kind, k = region
        capacity = sizes[k] if kind == "output" else placed.pools[k]
        held.sort()
        for (written, last, size), (written_next, _, _) in zip(held, held[1:]):
            assert last < written_next, (region, held)
        assert max(size for _, _, size in held) <= capacity, (region, held, placed)


def test_the_docstrings_example():
    placed = layout.place(sizes=[8, 8, 3], passes=[False] * 3, sources=[None, 0, 1],
                          reads=[("X",), ("Y",), ("X",)], dx=[None, 8, 8], dout=3, work=3)
    # the first Dense output, read by no backward, takes dL/dY, then layer 1's dX; the loss's work a pool
    assert placed.dout == ("output", 0) and placed.dx[1] == ("output", 0)
    assert placed.work == ("pool", 0) and placed.dx[2] == ("pool", 0) and placed.pools == [8]


@pytest.mark.parametrize("activation, in_outputs", [("sigmoid", 4), ("tanh", 4), ("relu", 2)])
def test_a_plans_deltas_lie_in_the_outputs_no_backward_reads(activation, in_outputs):
    """A sigmoid's (tanh's) backward reads its own output, so the Dense outputs under it are free for
    deltas once the forward is over; a ReLU's reads its input, the Dense output, leaving fewer."""
    model = mlp(6, [8, 5], 3, activation, seed=0)
    plan = StepPlan(model, "mse", SGD(lr=0.1), (16, 6))
    deltas = [plan._layout.dout, *plan._layout.dx]
    assert sum(at is not None and at[0] == "output" for at in deltas) == in_outputs
    assert f"{in_outputs} of the 5 deltas, dL/dY included, lie in layer outputs" in repr(plan)
    outputs = sum(o.size for o in plan.outputs if o is not None)
    assert sum(plan._layout.pools) < outputs  # two pools as large as the widest delta were 256 more


def test_a_users_subclass_with_methods_of_its_own_is_taken_to_read_both():
    """What a plan may write over follows gpubp's own statement only while the class's methods are
    gpubp's: a user's backward may read what gpubp's does not."""
    class Mine(gpubp.Sigmoid):
        def backward(self, dY, out=None):
            return super().backward(dY, out=out)

    class Named(gpubp.Sigmoid):
        label = "named"

    class Stated(gpubp.nn.Layer):
        backward_reads = ("Y",)

    assert gpubp.Sigmoid().reads_in_backward() == ("Y",) and gpubp.Dense(2, 2).reads_in_backward() == ("X",)
    assert Named().reads_in_backward() == ("Y",)
    assert Mine().reads_in_backward() == ("X", "Y")
    assert Stated().reads_in_backward() == ("Y",)
