"""Dropout's counter-based mask (gpubp/backend/kernels/dropout.py): MurmurHash3 and SplitMix64 held to
their published values, the threshold rule, the rate, the CUDA body run on the host equal bit for bit
to the NumPy path (blocked, block offsets included), (seed, step) determinism, a planned step equal to
the eager one bit for bit (training and eval) with no allocation per step, and, on a GPU, the same
mask as on the CPU. (NVRTC compiles the body: tests/backend/test_nvrtc.py covers every kernel.)"""
import struct
import tracemalloc

import numpy as np
import pytest

import gpubp
from gpubp.backend._blocks import BLOCK
from gpubp.backend.kernels import dropout as kernels
from gpubp.nn import Dense, Dropout, ReLU, Sigmoid
from gpubp.nn.share import BatchShare
from gpubp.optim import SGD, Adam
from gpubp.plan import StepPlan, plan_problem
from gpubp.train import fit

from backend.kernel_truth import HostBuild, compiler
from helpers import needs_gpu

M32 = 0xFFFFFFFF


def murmur3_32(data: bytes, seed: int) -> int:
    """MurmurHash3_x86_32, transcribed from smhasher's MurmurHash3.cpp, one byte string at a time."""
    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & M32
    h, blocks = seed, len(data) // 4
    for j in range(blocks):
        k = int.from_bytes(data[4 * j:4 * j + 4], "little")
        h ^= rotl(k * 0xCC9E2D51 & M32, 15) * 0x1B873593 & M32
        h = (rotl(h, 13) * 5 + 0xE6546B64) & M32
    tail = data[4 * blocks:]
    if tail:
        h ^= rotl(int.from_bytes(tail, "little") * 0xCC9E2D51 & M32, 15) * 0x1B873593 & M32
    h ^= len(data)
    h ^= h >> 16
    h = h * 0x85EBCA6B & M32
    h ^= h >> 13
    h = h * 0xC2B2AE35 & M32
    return h ^ (h >> 16)


def test_murmur3_and_splitmix64_are_the_published_functions():
    # MurmurHash3_x86_32's test vectors (smhasher; as listed on Wikipedia's MurmurHash page)
    assert murmur3_32(b"", 0) == 0 and murmur3_32(b"", 1) == 0x514E28B7
    assert murmur3_32(b"\x21\x43\x65\x87", 0) == 0xF55B516B
    assert murmur3_32(b"\x00\x00\x00\x00", 0) == 0x2362F9DE
    assert murmur3_32(b"\xff\xff\xff\xff", 0) == 0x76293B50
    assert murmur3_32(b"Hello, world!", 0x9747B28C) == 0x24884CBA
    # SplitMix64 seeded with 1234567: its first outputs (Vigna's splitmix64.c, java.util.SplittableRandom)
    for step, out in enumerate([6457827717110365317, 3203168211198807973, 9817491932198370423]):
        assert kernels.key_words(1234567, step) == (out & M32, out >> 32)


@pytest.mark.parametrize("start", [0, 5 * BLOCK + 3, 2**32 - 7, 3 * 2**32 + 11], ids=["0", "block", "crossing-2^32", "high"])
def test_the_hash_is_murmur3_of_the_index_then_the_key(start):
    """h(i) = MurmurHash3_x86_32(lo32(i), hi32(i), k1; seed k0), in the NumPy path at any block offset
    (across 2^32 too) and in the reference formula."""
    k0, k1 = kernels.key_words(99, 12345)
    n = 16
    h, tmp = np.empty(n, np.uint32), np.empty(n, np.uint32)
    kernels.murmur3_indices(h, tmp, start, k0, k1)
    want = [murmur3_32(struct.pack("<III", i & M32, i >> 32, k1), k0) for i in range(start, start + n)]
    assert h.tolist() == want
    t = kernels.threshold(0.5)
    _, mask = kernels.dropout.reference(np.ones(n), k0, k1, t, start, 2.0)  # the kernel's offset: the first index
    assert mask.tolist() == [2.0 if v >= t else 0.0 for v in want]
    y, blocked = np.empty(n), np.empty(n)
    gpubp.get_backend("cpu", "float64").launch(kernels.dropout, np.ones(n), k0, k1, t, np.uint64(start), 2.0, y, blocked)
    assert blocked.tolist() == mask.tolist()


def test_the_threshold_rule():
    """t = min(round(p 2^32), 2^32 - 1), kept when h >= t: P(drop) = t / 2^32, within 2^-33 of p."""
    assert kernels.threshold(0.0) == 0 and kernels.threshold(0.5) == 2**31 and kernels.threshold(0.25) == 2**30
    assert kernels.threshold(0.1) == 429496730  # 0.1 * 2^32 = 429496729.6
    assert kernels.threshold(1 - 2**-40) == 2**32 - 1  # would round to 2^32: clamped
    for p in np.random.default_rng(0).uniform(0, 1, 1000):
        assert abs(kernels.threshold(p) / 2**32 - p) <= 2**-33


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_rate_and_independence_of_successive_masks(p):
    """Over 2^20 elements (seed 2024, fixed: the test is deterministic) the fraction dropped is within
    six binomial standard deviations of p, and two successive steps' masks agree as independent
    draws would (p^2 + (1 - p)^2), within six standard deviations too."""
    layer, n = Dropout(p, seed=2024, backend=gpubp.get_backend("cpu", "float32")), 1 << 20
    X = np.ones((1024, 1024), np.float32)
    masks = [layer(X) == 0 for _ in range(3)]
    for dropped in masks:
        assert abs(dropped.mean() - p) < 6 * np.sqrt(p * (1 - p) / n)
    agree, q = (masks[0] == masks[1]).mean(), p * p + (1 - p) * (1 - p)
    assert abs(agree - q) < 6 * np.sqrt(q * (1 - q) / n)
    assert abs((masks[1] & masks[2]).mean() - p * p) < 6 * np.sqrt(p * p * (1 - p * p) / n)


@pytest.fixture(scope="module")
def host_build(tmp_path_factory):
    if compiler() is None:
        pytest.skip("no C++ compiler (g++/c++ or $CXX): the CUDA body cannot run on the host")
    return HostBuild(tmp_path_factory.mktemp("dropout_host"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed, step, p, offset", [(0, 0, 0.5, 0), (2**62 + 1, 2**40, 0.1, 2**32 - BLOCK),
                                                   (7, 3, 0.0, 5), (5, 9, 1 - 2**-40, 3 * 2**32)])
def test_the_cuda_body_on_the_host_equals_the_numpy_path_bit_for_bit(host_build, dtype, seed, step, p, offset):
    """The CUDA body compiled as host C++ over the whole array (indices from 0, plus the offset) and the
    NumPy backend's launch (in blocks, each given its first index) write the same bits: y and the mask."""
    n, dt = 3 * BLOCK + 123, np.dtype(dtype)
    x = np.random.default_rng(seed % 97).normal(size=n).astype(dt)
    scalars = [*kernels.key_words(seed, step), kernels.threshold(p), np.uint64(offset), dt.type(1 / (1 - p))]
    host = [np.full(n, np.nan, dt) for _ in range(2)]
    host_build.run(kernels.dropout, dt, [x, *scalars], host)
    blocked = [np.full(n, np.nan, dt) for _ in range(2)]
    gpubp.get_backend("cpu", dtype).launch(kernels.dropout, x, *scalars, *blocked)
    for a, b, name in zip(host, blocked, ("y", "mask")):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=name)


def test_a_seed_and_step_give_one_mask():
    backend = gpubp.get_backend("cpu", "float64")
    X = np.ones((64, 33))
    a, b, c = (Dropout(0.5, seed=s, backend=backend) for s in (3, 3, 4))
    a.step = b.step = c.step = 10
    first = a(X)
    np.testing.assert_array_equal(b(X), first)  # the same (seed, step)
    assert not np.array_equal(a(X), first)  # the next step
    assert not np.array_equal(c(X), first)  # another seed
    b.step = 10
    np.testing.assert_array_equal(b(X), first)


def dropout_model(backend="cpu", dtype="float64", seed=0, p=0.4):
    return gpubp.Sequential([Dense(6, 16), ReLU(), Dropout(p), Dense(16, 8), Sigmoid(), Dropout(p / 2), Dense(8, 3)],
                            backend=backend, dtype=dtype, seed=seed)


def problem(n=70, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 3, n)


def test_a_planned_fit_equals_the_eager_fit_bit_for_bit():
    """70 samples in batches of 16: a short last batch, so two plans sharing each Dropout; every
    step's masks, losses, parameters and the Dropout steps are those of the eager fit."""
    X, y = problem()
    runs = []
    for planned in (False, True):
        model = dropout_model()
        assert plan_problem(model) is None
        h = fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=3, batch_size=16, seed=1, plan=planned, progress=False)
        runs.append((h.loss, model))
    (loss_e, eager), (loss_p, planned) = runs
    assert loss_p == loss_e
    assert [layer.state for layer in planned.layers if isinstance(layer, Dropout)] == \
        [layer.state for layer in eager.layers if isinstance(layer, Dropout)] == [{"seed": s, "step": 15}
                                                                                   for s in (planned.layers[2].seed,
                                                                                             planned.layers[5].seed)]
    for name, p in eager.parameters().items():
        np.testing.assert_array_equal(planned.parameters()[name], p, err_msg=name)


def eager_step(model, loss, opt, X, y):
    model.zero_grad()
    value = loss.forward(model.forward(X), y)
    model.backward(loss.backward(), input_grad=False)
    opt.step(model)
    return value


def test_a_plan_follows_the_mode_and_moves_no_state_when_made():
    """Making a plan (its dry forward) moves no Dropout step; a planned step in eval mode passes its
    input on as the eager one does (no step taken), and in training again drops what eager drops."""
    X, y = problem(16)
    planned_model, eager_model = dropout_model(), dropout_model()
    planned_model.eval()  # a plan made in eval mode still gives Dropout its buffers
    plan = StepPlan(planned_model, "softmax_cross_entropy", SGD(lr=0.1), (16, 6), (16,), np.int64)
    assert [layer.step for layer in planned_model.layers if isinstance(layer, Dropout)] == [0, 0]
    assert planned_model.layers[2].training is False
    loss, opt = gpubp.losses.get_loss("softmax_cross_entropy"), SGD(lr=0.1)
    for mode in (False, True, False, True, True):
        planned_model.train(mode)
        eager_model.train(mode)
        value = plan.step(X, y)
        want = eager_step(eager_model, loss, opt, X, y)
        assert float(value) == float(want)
        assert planned_model.layers[2].state == eager_model.layers[2].state
        for name, p in eager_model.parameters().items():
            np.testing.assert_array_equal(planned_model.parameters()[name], p, err_msg=name)
    assert planned_model.layers[2].step == 3


def test_no_array_allocated_per_planned_step_with_dropout():
    """As tests/training/test_plan.py holds for Dense models: after warm-up a planned step allocates
    nothing but NumPy's ufunc buffer and a few hundred bytes, with Dropout on 256 x 256 activations
    (its hash runs in scratch kept per thread, its mask in the plan binding's buffer)."""
    rng = np.random.default_rng(0)
    model = gpubp.Sequential([Dense(32, 256), ReLU(), Dropout(0.3), Dense(256, 256), Sigmoid(), Dropout(0.2),
                              Dense(256, 4)], seed=0)
    X, y = model.backend.asarray(rng.normal(size=(256, 32))), model.backend.asarray(rng.normal(size=(256, 4)))
    plan = StepPlan(model, "mse", SGD(lr=0.01), X.shape, y.shape)
    for _ in range(3):
        plan.step(X, y)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(8):
            plan.step(X, y)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = np.getbufsize() * 4 + 8 * 1024
    assert bound < 256 * 256 * 4  # a mask- or activation-sized array would fail
    assert peak - base <= bound, peak - base
    assert current - base <= 4 * 1024
    assert model.layers[2].step == 11


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_mask_is_the_same_on_the_cpu_and_the_gpu(dtype):
    """One (seed, step), the same bits on both devices: the CPU's blocked NumPy path (each block given
    its first index) and the GPU's one kernel over every index."""
    X = np.random.default_rng(4).normal(size=(3, BLOCK + 77)).astype(dtype)
    cpu = Dropout(0.3, seed=123, backend=gpubp.get_backend("cpu", dtype))
    gpu = Dropout(0.3, seed=123, backend=gpubp.get_backend("cuda:0", dtype))
    cpu.step = gpu.step = 2**33 + 5
    Y_cpu, Y_gpu = cpu(X), gpu.backend.to_numpy(gpu(gpu.backend.asarray(X)))
    np.testing.assert_array_equal(Y_gpu.view(np.uint8), Y_cpu.view(np.uint8))
    np.testing.assert_array_equal(gpu.backend.to_numpy(gpu.mask), cpu.mask)
    assert gpu.step == cpu.step == 2**33 + 6
    dY = np.random.default_rng(5).normal(size=X.shape).astype(dtype)
    np.testing.assert_array_equal(gpu.backend.to_numpy(gpu.backward(gpu.backend.asarray(dY))), cpu.backward(dY))


@pytest.mark.parametrize("shape", [(10, 7), (9, 2, 3, 3)], ids=["2d", "4d"])
def test_the_shares_of_a_batch_draw_the_rows_of_its_mask(shape, device):
    """A data-parallel rank's share of a global batch, told where it starts (``share.first``), drops
    what one process drops on those rows of the whole batch: the shares' masks, stacked in order, are
    the whole batch's mask, bit for bit, whatever the cut (an empty share included)."""
    backend = gpubp.get_backend(device, "float64")
    X = backend.asarray(np.random.default_rng(3).normal(size=shape) + 5.0)  # no zeros of its own
    whole = Dropout(0.4, seed=21, backend=backend)
    whole.step = 6
    want = backend.to_numpy(whole(X))
    for cuts in ([0, 3, 7, shape[0]], [0, 0, 1, shape[0]], [0, shape[0]]):
        parts = []
        for lo, hi in zip(cuts, cuts[1:]):
            share = Dropout(0.4, seed=21, backend=backend)
            share.step, share.share = 6, BatchShare(lo, shape[0])
            parts.append(backend.to_numpy(share(X[lo:hi])))
            assert share.step == 7
        np.testing.assert_array_equal(np.concatenate(parts), want)
    shifted = Dropout(0.4, seed=21, backend=backend)
    shifted.step, shifted.share = 6, BatchShare(1, shape[0])  # another place in the batch: another mask
    assert not np.array_equal(backend.to_numpy(shifted(X[:4])), want[:4])


@pytest.mark.parametrize("bad", [-1, 2.5, "0", 2**63])
def test_a_share_s_first_sample_is_a_whole_number_named_when_refused(bad):
    layer = Dropout(0.5)
    layer.share = BatchShare(bad, 10)
    with pytest.raises(gpubp.errors.GpubpError, match="Dropout share.first"):
        layer(np.ones((2, 3), np.float32))
