"""The pure half of gpubp.distributed, in this process (no MPI started): shards, gradient
weights, flat buckets, and the import rules (``import gpubp`` never reaches this package or mpi4py)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gpubp
from gpubp.distributed import FlatBuckets, epoch_order, grad_scale, local_batches, shard, shard_bounds
from gpubp.errors import DTypeError, InvalidValueError, ShapeError

from helpers import ROOT


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("n, batch_size", [(23, 8), (7, 3), (5, 1), (3, 10), (16, 4)])
def test_the_shards_of_every_batch_are_exactly_the_single_process_batch(n, batch_size, size):
    for epoch in range(2):
        order = epoch_order(n, 5, epoch)
        per_rank = [list(local_batches(n, batch_size, 5, epoch, r, size)) for r in range(size)]
        single = [order[lo:lo + batch_size] for lo in range(0, n, batch_size)]
        assert all(len(batches) == len(single) for batches in per_rank)  # every rank takes every step
        for step, batch in enumerate(single):
            shares = [per_rank[r][step][0] for r in range(size)]
            assert np.array_equal(np.concatenate(shares), batch)  # disjoint, complete, in rank order
            assert {per_rank[r][step][1] for r in range(size)} == {len(batch)}
            lengths = [len(s) for s in shares]
            assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_the_order_is_fits_and_the_same_on_every_rank():
    assert np.array_equal(epoch_order(10, 3, 2), np.random.default_rng([3, 2]).permutation(10))
    assert np.array_equal(epoch_order(10, 3, 2, shuffle=False), np.arange(10))
    assert shard_bounds(1, 1, 4) == (1, 1) and len(shard(np.arange(1), 3, 4)) == 0  # fewer samples than ranks


def test_weighted_local_means_sum_to_the_global_mean():
    g = np.random.default_rng(0).standard_normal((11, 3))  # per-sample gradients of one global batch
    for size in (1, 2, 3, 5, 11, 13):
        total = np.zeros(3)
        for r in range(size):
            lo, hi = shard_bounds(11, r, size)
            if hi > lo:
                total += grad_scale(hi - lo, 11) * g[lo:hi].mean(axis=0)
        np.testing.assert_allclose(total, g.mean(axis=0), rtol=1e-14, atol=1e-15)
    assert grad_scale(0, 4) == 0.0 and grad_scale(4, 4) == 1.0


@pytest.mark.parametrize("bad,name", [((5, 4), "local_n"), ((-1, 4), "local_n"), ((0, 0), "global_n")])
def test_grad_scale_refuses_impossible_counts(bad, name):
    with pytest.raises(InvalidValueError, match=name):
        grad_scale(*bad)


def test_rank_and_batch_size_are_checked():
    with pytest.raises(InvalidValueError, match="rank"):
        shard_bounds(4, 2, 2)
    with pytest.raises(InvalidValueError, match="batch_size"):
        next(local_batches(4, 0, 0, 0, 0, 1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flat_buckets_pack_scale_and_unpack(dtype):
    shapes = [(3, 5), (17,), (4, 4, 2), (1,)]
    arrays = [np.random.default_rng(i).standard_normal(s).astype(dtype) for i, s in enumerate(shapes)]
    plan = FlatBuckets(shapes, dtype, bucket_bytes=64)
    n = sum(a.size for a in arrays)
    assert len(plan.buckets) == -(-n * np.dtype(dtype).itemsize // 64)  # ceil(bytes / bucket bytes)
    assert sum(b.size for b in plan.buckets) == n and all(b.base is plan.flat for b in plan.buckets)
    plan.pack(arrays, 0.5)
    np.testing.assert_array_equal(plan.flat, np.concatenate([a.ravel() * np.asarray(0.5, dtype) for a in arrays]))
    assert plan.flat.dtype == dtype  # a Python float never promotes float32
    out = [np.empty_like(a) for a in arrays]
    plan.unpack(out)
    for a, b in zip(arrays, out):
        np.testing.assert_array_equal(b, a * np.asarray(0.5, dtype))
    plan.pack([np.full(s, np.nan, dtype) for s in shapes], 0)  # a rank without samples adds zeros
    assert not plan.flat.any()


def test_flat_buckets_refuse_other_layouts():
    plan = FlatBuckets([(2, 2)], "float64")
    assert len(plan.buckets) == 1  # 32 bytes under the default 4 MiB
    with pytest.raises(ShapeError, match="shape"):
        plan.pack([np.zeros(4)])
    with pytest.raises(DTypeError, match="float32"):
        plan.pack([np.zeros((2, 2), np.float32)])
    with pytest.raises(ShapeError, match="planned for 1 arrays, got 2"):
        plan.pack([np.zeros((2, 2))] * 2)
    assert FlatBuckets([], "float64").buckets == []


def test_import_gpubp_never_imports_mpi():
    code = ("import sys, gpubp; assert 'mpi4py' not in sys.modules and 'gpubp.distributed' not in sys.modules; "
            "import gpubp.distributed; assert 'mpi4py' not in sys.modules, 'only gpubp.distributed.mpi starts MPI'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "distributed" not in gpubp.__all__


def test_distributed_training_without_mpi_is_one_clear_line():
    code = ("import sys; sys.modules['mpi4py'] = None\n"  # as on a machine without gpubp[mpi]
            "from gpubp.cli import main\n"
            "sys.exit(main(['train', '--distributed', '--epochs', '1', '--device', 'cpu']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("gpubp train: error: gpubp.distributed needs mpi4py"), proc.stderr
