"""BatchNorm over the shares of a global batch (gpubp/nn/share.py), in one process: threads stand for
the data-parallel ranks and ``Shares.sum_`` for their all-reduce. Each share's output, dX and running
estimates are those of one BatchNorm over the whole batch, and the shares' gamma/beta gradients add
up to its (float64, norm-wise 1e-13), for 2-d and image inputs, shares of one sample and a share of
none (``idle_forward``/``idle_backward``), on the CPU and on a GPU. (tests/distributed runs the same under
MPI, in fit.)"""
import threading

import numpy as np
import pytest

import gpubp
from gpubp.nn.share import BatchShare


class Shares:
    """``sum_`` for ``k`` threads: every call sums the threads' arrays (on the host, in thread order)
    into each."""

    def __init__(self, k, backend):
        self.k, self.backend, self.barrier, self.held = k, backend, threading.Barrier(k, timeout=20), [None] * k

    def sum_for(self, i):
        def sum_(arrays):
            self.held[i] = [np.array(self.backend.to_numpy(a)) for a in arrays]  # copies: the arrays are written below
            self.barrier.wait()
            for j, a in enumerate(arrays):
                a[...] = self.backend.asarray(sum(self.held[r][j] for r in range(self.k)), dtype=a.dtype)
            self.barrier.wait()
        return sum_


def close(a, b, rtol=1e-13):
    a, b = (gpubp.get_backend("cpu").to_numpy(v) if not isinstance(v, np.ndarray) else v for v in (a, b))
    return np.abs(a - b).max() <= rtol * max(np.abs(b).max(), 1e-300)


def layer(C, momentum, backend=None):
    bn = gpubp.BatchNorm(C, momentum=momentum, backend=backend or gpubp.get_backend("cpu", "float64"))
    bn.params["gamma"][...] = bn.backend.asarray(np.linspace(0.5, 2, C))
    bn.params["beta"][...] = bn.backend.asarray(np.linspace(-1, 1, C))
    return bn


@pytest.mark.parametrize("shape, cuts", [((10, 3), [0, 5, 10]), ((10, 3), [0, 4, 4, 10]), ((7, 4), [0, 1, 2, 7]),
                                         ((6, 2, 3, 3), [0, 1, 6]), ((5, 3, 2, 2), [0, 2, 2, 5])],
                         ids=["halves", "idle-share", "one-sample-shares", "images", "images-idle"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_shares_of_a_batch_normalise_as_the_whole_batch(shape, cuts, momentum, device):
    backend = gpubp.get_backend(device, "float64")
    rng = np.random.default_rng(len(cuts))
    X, dY = (backend.asarray(a) for a in (rng.normal(size=shape) * 3 + 1, rng.normal(size=shape)))
    whole = layer(shape[1], momentum, backend)
    for _ in range(2):  # two steps: the running estimates move twice (the count to 2)
        whole.zero_grad()
        Y_whole, dX_whole = whole(X), whole.backward(dY)
    k, sums = len(cuts) - 1, Shares(len(cuts) - 1, backend)
    parts, layers, failures = [None] * k, [layer(shape[1], momentum, backend) for _ in range(k)], []

    def rank(i):
        lo, hi = cuts[i], cuts[i + 1]
        bn = layers[i]
        bn.share = BatchShare(lo, shape[0], sums.sum_for(i))
        try:
            for _ in range(2):
                bn.zero_grad()
                if hi > lo:
                    parts[i] = (backend.to_numpy(bn(X[lo:hi])), backend.to_numpy(bn.backward(dY[lo:hi])))
                else:
                    bn.idle_forward()
                    bn.idle_backward()
        except Exception as exc:  # said by the test, not lost in the thread
            failures.append(exc)
            sums.barrier.abort()

    threads = [threading.Thread(target=rank, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert close(np.concatenate([p[0] for p in parts if p]), Y_whole)
    assert close(np.concatenate([p[1] for p in parts if p]), dX_whole)
    for name in ("gamma", "beta"):  # each share's gradient is its own part: fit sums them over the ranks
        assert close(sum(bn.grads[name] for bn, p in zip(layers, parts) if p), whole.grads[name])
    for bn in layers:  # every share moves the estimates by the global batch's statistics, the idle one too
        for name, value in whole.buffers.items():
            assert close(bn.buffers[name], value), name


def test_a_share_of_one_sample_is_taken_where_the_global_batch_has_more():
    """One sample of a global batch of 4 is no batch of one (its statistics are the global batch's);
    without a share, or in a global batch of one, it is refused, as in one process."""
    bn = layer(3, 0.1)
    bn.share = BatchShare(3, 4)  # no sum: shapes only (a step plan's dry run)
    assert bn(np.ones((1, 3))).shape == (1, 3)
    bn.share = BatchShare(0, 1)
    with pytest.raises(gpubp.errors.ShapeError, match="more than one value per channel"):
        bn(np.ones((1, 3)))
    bn.share = None
    with pytest.raises(gpubp.errors.ShapeError, match="more than one value per channel"):
        bn(np.ones((1, 3)))
