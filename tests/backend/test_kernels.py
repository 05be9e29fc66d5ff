"""Every registry kernel: NumPy fast path vs its reference formula, on every backend,
and the activation kernels at extreme inputs. New kernels are covered automatically."""
import warnings

import numpy as np
import pytest

import gpubp
from gpubp.backend import KERNELS
from gpubp.backend._blocks import BLOCK, THREADED
from gpubp.backend.kernels import activations, sample_arguments, scratch
from gpubp.bench.memory import traced_allocation
from gpubp.errors import InvalidValueError

from helpers import TOL, needs_gpu


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_matches_reference(name, backend):
    kernel, dtype = KERNELS[name], backend.dtype
    ins, outs = sample_arguments(kernel, dtype, np.random.default_rng(0), n=1000, spread=3.0)
    expected = as_tuple(kernel.reference(*ins, *[o.copy() for o in outs]))
    got = [backend.asarray(o) for o in outs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.launch(kernel, *[backend.asarray(a) if np.ndim(a) else a for a in ins], *got)
    for out_name, want, have in zip(kernel.output_names, expected, got):
        have = backend.to_numpy(have)
        assert have.dtype == dtype, f"{name}.{out_name} came back as {have.dtype}"
        np.testing.assert_allclose(have, want, **TOL[dtype], err_msg=f"{name}.{out_name}")


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_blocked_path_equals_one_pass(name, dtype):
    """Large arrays go through the NumPy path in blocks; the result must not change."""
    kernel, dt = KERNELS[name], np.dtype(dtype)
    ins, outs = sample_arguments(kernel, dt, np.random.default_rng(1), n=2 * BLOCK + 123, spread=3.0)
    one = [o.copy() for o in outs]
    kernel.numpy(*ins, *one)
    blocked = [o.copy() for o in outs]
    gpubp.get_backend("cpu", dtype).launch(kernel, *ins, *blocked)
    for a, b in zip(one, blocked):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1000, 2 * BLOCK + 7], ids=["one-block", "blocked"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_bound_launch_repeats_the_launch(name, n, backend):
    """``backend.bind`` (a step plan's launch) checks once and then computes what ``launch``
    computes, on the arrays it was bound to, each time it is called."""
    kernel = KERNELS[name]
    ins, outs = sample_arguments(kernel, backend.dtype, np.random.default_rng(2), n=n)
    ins = [backend.asarray(a) if np.ndim(a) else float(a) for a in ins]
    bound_outs, want = [backend.asarray(o) for o in outs], [backend.asarray(o) for o in outs]
    run = backend.bind(kernel, *ins, *bound_outs)
    for a, o in zip(bound_outs, outs):  # binding runs nothing
        np.testing.assert_array_equal(backend.to_numpy(a), o)
    for _ in range(2):
        run()
        backend.launch(kernel, *ins, *want)
        for a, b in zip(bound_outs, want):
            np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    with pytest.raises(InvalidValueError, match=name):
        backend.bind(kernel, *ins)  # the outputs are missing: refused when bound, not when run


@pytest.mark.parametrize("name", sorted(k for k, kernel in KERNELS.items() if kernel.scalars))
def test_scalars_as_0d_arrays_still_run_in_blocks(name):
    """An optimizer binds its update with the step's scalars as 0-d arrays (read at each launch).
    A large array still runs in cache-sized blocks, each with a block of scratch at most (one
    whole-array pass would need scratch of the parameter's size), and computes what one pass
    with plain numbers computes."""
    kernel, backend = KERNELS[name], gpubp.get_backend("cpu", "float32")
    n = 3 * BLOCK + 7  # several blocks, fewer than are shared among threads
    assert n < THREADED
    ins, outs = sample_arguments(kernel, backend.dtype, np.random.default_rng(3), n=n)
    names = [a.split()[-1] for a in kernel.inputs.split(",")]
    zero_d = [np.asarray(a, backend.dtype) if name_ in kernel.scalars else a for a, name_ in zip(ins, names)]
    assert sum(np.ndim(a) == 0 for a in zero_d) == len(kernel.scalars)
    want = [o.copy() for o in outs]
    run = backend.bind(kernel, *zero_d, *outs)
    scratch.forget_scratch()  # no scratch kept from before: this run makes its own
    peak = traced_allocation(run, 1)[0]
    made = scratch.held()  # blocks: never a parameter-sized scratch, nor a temporary beside them
    assert all(a.size <= BLOCK for a in made.values()), {k: a.size for k, a in made.items()}
    iota, objects = BLOCK * 4, 8 * 1024  # dropout's counter 0, 1, 2, ... grown to a block once; Python's own
    assert peak <= sum(a.nbytes for a in made.values()) + iota + objects, peak
    kernel.numpy(*[float(a) if np.ndim(a) == 0 else a for a in ins], *want)
    for have, expected in zip(outs, want):
        np.testing.assert_array_equal(have, expected)


UPDATES = sorted(k for k, kernel in KERNELS.items() if kernel.numpy.__module__.endswith(".updates"))


@pytest.mark.parametrize("name", UPDATES)
@pytest.mark.parametrize("room", [0, 1, 3])
def test_update_takes_its_scratch_from_a_lent_buffer(name, room):
    """Inside ``ScratchIn(buffer)`` an update's scratch is a piece of ``buffer`` where it has room
    (``room`` parameter sizes: none, one, or more than any update needs), else its own: the
    numbers are those of the update with its own scratch, and a lent buffer with room is written."""
    kernel = KERNELS[name]
    ins, outs = sample_arguments(kernel, np.dtype("float32"), np.random.default_rng(4), n=5000)
    want = [o.copy() for o in outs]
    kernel.numpy(*ins, *want)
    lent = np.full(room * 5000 + 3, 7.0, np.float32)
    scratch.forget_scratch()
    with scratch.ScratchIn(lent):
        peak = traced_allocation(lambda: kernel.numpy(*ins, *outs), 1)[0]
    for have, expected in zip(outs, want):
        np.testing.assert_array_equal(have, expected)
    assert scratch.lent() is None  # nothing lent after the block
    if room == 3:  # every scratch array an update takes (two at most) fits: none of its own
        assert peak < 5000 * 4, peak
        assert not np.all(lent == 7.0)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_threaded_blocks_equal_one_pass(name, monkeypatch):
    """From THREADED elements the blocks are shared among threads; three threads give
    uneven shares, and the result must not change."""
    from gpubp.backend._blocks import BLOCK, THREADED
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    kernel = KERNELS[name]
    ins, outs = sample_arguments(kernel, np.dtype("float32"), np.random.default_rng(2), n=THREADED + BLOCK // 3)
    one = [o.copy() for o in outs]
    kernel.numpy(*ins, *one)
    gpubp.get_backend("cpu").launch(kernel, *ins, *outs)
    for a, b in zip(one, outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="this platform cannot fork")
def test_threaded_kernels_work_in_a_forked_child():
    import multiprocessing
    from gpubp.backend._blocks import THREADED
    be = gpubp.get_backend("cpu")
    z = be.asarray(np.linspace(-5, 5, THREADED))
    be.apply(activations.sigmoid, z)  # the parent now has a thread pool; the child must not wait on its threads
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=be.apply, args=(activations.sigmoid, z))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, "the forked child hung or failed in a threaded kernel"


EXTREME = np.array([-1e4, -1e3, -710.0, -100.0, -89.0, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 30.0, 89.0,
                    100.0, 710.0, 1e3, 1e4])


def test_sigmoid_at_extremes(backend):
    z = backend.asarray(EXTREME)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = backend.to_numpy(backend.apply(activations.sigmoid, z))
    with np.errstate(under="ignore"):
        exact = np.exp(-np.logaddexp(0, -EXTREME))  # float64 ground truth, no overflow
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))
    # values near the dtype's smallest normal may differ (the CPU path clips z below
    # exp's range: s >= 1e-38 in float32, 1e-308 in float64); all else is accurate
    np.testing.assert_allclose(s, exact.astype(backend.dtype), rtol=TOL[backend.dtype]["rtol"] * 10,
                               atol=np.finfo(backend.dtype).tiny * 1e8)
    assert s[EXTREME == 0.0][0] == 0.5
    assert s[-1] == 1.0 and s[0] < 1e-30


@pytest.mark.parametrize("name", ["tanh", "relu", "leaky_relu"])
def test_other_activations_at_extremes(name, backend):
    kernel = KERNELS[name]
    z = backend.asarray(EXTREME)
    extra = (0.1,) if kernel.scalars else ()
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = backend.to_numpy(backend.apply(kernel, z, *extra))
    want = kernel.reference(EXTREME.astype(backend.dtype), *[backend.dtype.type(e) for e in extra], None)
    np.testing.assert_allclose(y, want, **TOL[backend.dtype])


def test_sigmoid_backward_uses_the_saved_output(backend):
    z = np.linspace(-8, 8, 101)
    s = backend.apply(activations.sigmoid, backend.asarray(z))
    g = backend.asarray(np.ones_like(z))
    delta = backend.to_numpy(backend.apply(activations.sigmoid_backward, g, s))
    sig = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(delta, sig * (1 - sig), **TOL[backend.dtype])
    assert delta.max() == pytest.approx(0.25, rel=1e-6)  # the seeds' point: never above 1/4


def test_fused_numpy_path_allocates_nothing_large():
    """The CPU path writes into `out`: peak extra memory is at most a small block."""
    be = gpubp.get_backend("cpu", "float32")
    g, s, out = (be.asarray(np.random.rand(1 << 20)) for _ in range(3))
    be.apply(activations.sigmoid_backward, g, s, out=out)
    peak = traced_allocation(lambda: be.apply(activations.sigmoid_backward, g, s, out=out), 1)[0]
    assert peak < out.nbytes / 8, f"{peak} bytes allocated for a {out.nbytes}-byte in-place kernel"


def test_a_kernel_must_start_with_an_array():
    from gpubp.backend.kernels import Kernel, register
    bad = Kernel("scaled_copy_test", "T scale, T x", "T y", "y = scale * x", None, None, scalars=("scale",))
    with pytest.raises(ValueError, match="first input must be an array"):
        register(bad)
    assert "scaled_copy_test" not in KERNELS


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_kernel_at_extremes(name, backend):
    """Array inputs up to |x| = 1e4 (state in [0, 1]): no warning, nothing non-finite, and
    agreement with the reference formula evaluated in float64."""
    kernel, dtype = KERNELS[name], backend.dtype
    ins, outs = sample_arguments(kernel, dtype, np.random.default_rng(2), n=EXTREME.size, spread=3.0)
    ins = [a if np.ndim(a) == 0 else np.roll(EXTREME, k).astype(dtype) for k, a in enumerate(ins)]
    if name.endswith("_backward") and kernel.input_names[1] in ("s", "t"):
        ins[1] = backend.to_numpy(backend.apply(KERNELS[name.removesuffix("_backward")], backend.asarray(ins[1])))
    got = [backend.asarray(o) for o in outs]
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        backend.launch(kernel, *[backend.asarray(a) if np.ndim(a) else a for a in ins], *got)
    with np.errstate(all="ignore"):
        want = as_tuple(kernel.reference(*[np.float64(a) if np.ndim(a) == 0 else a.astype(np.float64) for a in ins],
                                         *[o.astype(np.float64) for o in outs]))
    for out_name, w, have in zip(kernel.output_names, want, got):
        have = backend.to_numpy(have)
        assert np.all(np.isfinite(have)), f"{name}.{out_name} is not finite at {ins}"
        np.testing.assert_allclose(have, w, rtol=TOL[dtype]["rtol"] * 10,
                                   atol=np.finfo(dtype).tiny * 1e8 + TOL[dtype]["atol"] * np.abs(w).max(),
                                   err_msg=f"{name}.{out_name}")


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_kernel_takes_no_more_scratch_than_it_declares(name):
    """``Kernel.scratch`` is what a step plan leaves room for in its spent buffers (``_blocks.sizes``):
    a NumPy body taking more scratch arrays of its arguments' dtype would make its own beside them."""
    kernel, dt = KERNELS[name], np.dtype("float32")
    for k, example in enumerate(kernel.examples or [None]):
        ins, outs = sample_arguments(kernel, dt, np.random.default_rng(k), n=1000)
        if example is not None:  # each realistic set of scalars: weight decay, dampening take more
            ins = [dt.type(example[kernel.scalars.index(n_)]) if n_ in kernel.scalars else a
                   for a, n_ in zip(ins, kernel.input_names)]
        scratch.forget_scratch()
        with np.errstate(all="ignore"):
            kernel.numpy(*ins, *outs)
        taken = [key for key, a in scratch.held().items() if a.dtype == dt and a.size == 1000]
        assert len(taken) <= kernel.scratch, (example, taken)


@needs_gpu
def test_a_bound_cupy_launch_finds_its_kernel_once(monkeypatch):
    """A step plan's or optimizer's bound launch on CuPy looks up its ElementwiseKernel (and which
    scalars are 0-d arrays) when bound, not at each of its calls; and computes what ``launch`` does."""
    from gpubp.backend import cupy_backend
    backend, kernel = gpubp.get_backend("cuda:0", "float32"), KERNELS["sgd"]
    lookups = []
    found = cupy_backend.elementwise_kernel
    monkeypatch.setattr(cupy_backend, "elementwise_kernel", lambda *a: lookups.append(a) or found(*a))
    grad, param = (backend.asarray(np.linspace(-1, 1, 1000) * k) for k in (1, 2))
    lr, want = backend.asarray(np.float32(0.5)), param.copy()
    run = backend.bind(kernel, grad, lr, np.float32(0), param)
    for _ in range(3):
        run()
        backend.launch(kernel, grad, lr, np.float32(0), want)
    assert lookups == [(kernel, ("lr",))] + [(kernel, ("lr",))] * 3  # one for the bound launch, one per launch
    np.testing.assert_array_equal(backend.to_numpy(param), backend.to_numpy(want))


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_bound_kernel_allocates_nothing_per_call_after_its_first(name):
    """Every kernel's NumPy path takes its scratch from this thread's kept arrays (kernels/scratch.py):
    tanh's backward made a block-sized array per call before, so a planned tanh step allocated."""
    kernel, backend = KERNELS[name], gpubp.get_backend("cpu", "float32")
    ins, outs = sample_arguments(kernel, backend.dtype, np.random.default_rng(5), n=2 * BLOCK + 3)
    zero_d = [np.asarray(a, backend.dtype) if np.ndim(a) == 0 else a for a in ins]
    run = backend.bind(kernel, *zero_d, *outs)
    run()
    peak = traced_allocation(run, 1)[0]
    assert peak < 16 * 1024, peak  # Python objects and NumPy's iterator buffer: no block of scratch
