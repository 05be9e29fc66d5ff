"""BatchNorm's PyTorch options: affine=False (no gamma, beta: a layer without parameters),
track_running_stats=False (no buffers: batch statistics in training and eval) and momentum=None
(the cumulative average, counted in num_batches_tracked). Against torch.nn.BatchNorm1d/2d in
float64 over training steps then eval, for every combination; gradients against central
differences; a parameter-less BatchNorm in a model (optimizers, flat buffers, gradcheck, buckets,
checkpoints); the count saved, restored and resumed bit for bit; errors; CPU/GPU parity; and the
running statistics updated inside a CUDA graph capture (no host sync)."""
import itertools
import json

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.distributed.buckets import FlatBuckets
from gpubp.distributed.faults import layout
from gpubp.nn import BatchNorm, Conv2D, Flatten, layer_from_config

from helpers import needs_gpu
from test_norm import assert_steps_alike

F64 = gpubp.get_backend("cpu", "float64")
SHAPES = {"1d": (6, 3), "2d": (4, 3, 5, 2)}
OPTIONS = [dict(affine=a, track_running_stats=t, momentum=m)
           for a, t, m in itertools.product((True, False), (True, False), (0.1, None))]
IDS = ["-".join(f"{k}={v}" for k, v in o.items()) for o in OPTIONS]
GAMMA, BETA = np.array([1.5, -0.5, 2.0]), np.array([0.1, 0.2, -0.3])


def data(shape, seed):
    """Channels with different means and scales, changing with the seed."""
    bshape = (1, shape[1]) + (1,) * (len(shape) - 2)
    loc, scale = (np.arange(shape[1]) - 1.0 + seed), (1.0 + np.arange(shape[1])) * (1 + seed % 3)
    return np.random.default_rng(seed).normal(size=shape) * scale.reshape(bshape) + loc.reshape(bshape)


def layer_for(backend, affine=True, **options):
    layer = BatchNorm(3, affine=affine, backend=backend, **options)
    if affine:
        layer.params["gamma"][...] = backend.asarray(GAMMA)
        layer.params["beta"][...] = backend.asarray(BETA)
    return layer


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_matches_torch_in_training_then_eval(kind, options):
    """Four training steps on different batches, then two eval steps: Y, dX, dgamma, dbeta, the
    running statistics and num_batches_tracked, each step, to 1e-10 relative in float64."""
    torch = pytest.importorskip("torch")
    layer = layer_for(F64, **options)
    tbn = (torch.nn.BatchNorm1d if kind == "1d" else torch.nn.BatchNorm2d)(3, **options).double()
    if options["affine"]:
        with torch.no_grad():
            tbn.weight.copy_(torch.from_numpy(GAMMA))
            tbn.bias.copy_(torch.from_numpy(BETA))
    for step in range(6):
        training = step < 4
        layer.training = training
        tbn.train(training)
        X, dY = data(SHAPES[kind], step), np.random.default_rng(100 + step).normal(size=SHAPES[kind])
        tX = torch.from_numpy(X).requires_grad_()
        tY = tbn(tX)
        tY.backward(torch.from_numpy(dY))
        close(layer(X), tY.detach().numpy())
        layer.zero_grad()
        close(layer.backward(dY), tX.grad.numpy())
        assert set(layer.grads) == ({"gamma", "beta"} if options["affine"] else set())
        if options["affine"]:
            close(layer.grads["gamma"], tbn.weight.grad.numpy())
            close(layer.grads["beta"], tbn.bias.grad.numpy())
            tbn.weight.grad = tbn.bias.grad = None
        expected = {k: v.numpy() for k, v in tbn.state_dict().items() if k.startswith(("running", "num"))}
        if options["momentum"] is not None:
            expected.pop("num_batches_tracked", None)  # gpubp counts only where the count is used
        assert set(layer.buffers) == set(expected)
        for name, value in expected.items():
            close(layer.buffers[name], value)
        if "num_batches_tracked" in expected:
            assert layer.buffers["num_batches_tracked"].dtype == np.int64
            assert int(layer.buffers["num_batches_tracked"]) == min(step + 1, 4)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_gradients(options, training):
    layer = layer_for(F64, **options)
    if options["track_running_stats"]:
        layer(data(SHAPES["2d"], 7))  # running statistics that are not the initial ones
    layer.training = training
    report = gpubp.gradcheck_layer(layer, data(SHAPES["2d"], 0), atol=1e-7, rtol=1e-6)
    assert report.ok
    assert [r.name for r in report.rows] == ["dX"] + (["gamma", "beta"] if options["affine"] else [])


def test_cumulative_average_is_the_mean_of_every_batchs_statistics():
    """momentum=None: after n batches running_mean is the plain mean of their means and running_var
    of their unbiased variances (the initial 0 and 1 carry no weight)."""
    layer = BatchNorm(3, momentum=None, backend=F64)
    batches = [data(SHAPES["2d"], s) for s in range(5)]
    for X in batches:
        layer(X)
    per_channel = [np.moveaxis(X, 1, 0).reshape(3, -1) for X in batches]
    close(layer.buffers["running_mean"], np.mean([c.mean(axis=1) for c in per_channel], axis=0))
    close(layer.buffers["running_var"], np.mean([c.var(axis=1, ddof=1) for c in per_channel], axis=0))
    assert int(layer.buffers["num_batches_tracked"]) == 5


def test_a_batch_that_is_not_finite_is_neither_averaged_nor_counted():
    """Its NaN shows in its output; the estimates stay the average of the finite batches before and
    after it (PyTorch would count it and keep NaN in them for good)."""
    layer, twin = BatchNorm(3, momentum=None, backend=F64), BatchNorm(3, momentum=None, backend=F64)
    bad = data(SHAPES["1d"], 1)
    bad[2, 1] = np.nan
    with np.errstate(invalid="ignore"):
        for X in (data(SHAPES["1d"], 0), bad, data(SHAPES["1d"], 2)):
            layer(X)
    for X in (data(SHAPES["1d"], 0), data(SHAPES["1d"], 2)):
        twin(X)
    assert int(layer.buffers["num_batches_tracked"]) == 2
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(layer.buffers[name], twin.buffers[name])
    first = BatchNorm(3, momentum=None, backend=F64)  # the first batch not finite: nothing written, 0 counted
    with np.errstate(invalid="ignore"):
        first(bad)
    assert int(first.buffers["num_batches_tracked"]) == 0
    np.testing.assert_array_equal(first.buffers["running_var"], np.ones(3))


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_parity(device, dtype, options):
    """Each option on ``device`` in ``dtype`` against the CPU in float64 (TOL by dtype), training then
    eval: Y, dX, gradients, buffers; nothing promoted out of float32, the count int64 on the device."""
    layer, ref = layer_for(gpubp.get_backend(device, dtype), **options), layer_for(F64, **options)
    for step, training in enumerate((True, True, True, False)):
        layer.training = ref.training = training
        X = data(SHAPES["2d"], step).astype(dtype).astype(np.float64)
        dY = np.random.default_rng(step).normal(size=X.shape).astype(dtype).astype(np.float64)
        assert_steps_alike(layer, ref, X, dY)


def test_count_moves_with_the_layer(device):
    """``to``: the count stays an int64 (not the layer's dtype), on the new device, its value kept."""
    layer = BatchNorm(3, momentum=None, backend=F64)
    for step in range(3):
        layer(data(SHAPES["2d"], step))
    mean = layer.buffers["running_mean"].copy()
    layer.to(gpubp.get_backend(device, "float32"))
    be, count = layer.backend, layer.buffers["num_batches_tracked"]
    assert be.is_own(count) and count.dtype == np.int64 and int(be.to_numpy(count)) == 3
    np.testing.assert_allclose(be.to_numpy(layer.buffers["running_mean"]), mean, rtol=1e-6)
    layer(be.asarray(data(SHAPES["2d"], 3)))
    assert int(be.to_numpy(layer.buffers["num_batches_tracked"])) == 4


@needs_gpu
def test_running_statistics_update_makes_no_host_sync():
    """A training forward with momentum=None recorded in a CUDA graph capture, where any host read or
    sync is refused, then replayed on new batches: the count and the cumulative average move as eagerly."""
    be = gpubp.get_backend("cuda:0", "float64")
    layer, eager = BatchNorm(3, momentum=None, backend=be), BatchNorm(3, momentum=None, backend=F64)
    X = data(SHAPES["2d"], 0)
    Xd = be.asarray(X)
    stream = be.xp.cuda.Stream(non_blocking=True)
    with be.activate(), stream:
        layer(Xd)  # warm up on the stream: kernels compiled, the pool holding every block
        eager(X)
        stream.begin_capture()
        try:
            layer(Xd)
        finally:
            graph = stream.end_capture()
        assert int(be.to_numpy(layer.buffers["num_batches_tracked"])) == 1  # recorded, not run
        for k in range(2):  # each replay on a batch of its own: the average moves
            Xd[...] = be.asarray(data(SHAPES["2d"], k + 1))
            graph.launch(stream)
            eager(data(SHAPES["2d"], k + 1))
        stream.synchronize()
    assert int(be.to_numpy(layer.buffers["num_batches_tracked"])) == 3
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(be.to_numpy(layer.buffers[name]), eager.buffers[name], rtol=1e-12)


def test_without_running_statistics_one_value_per_channel_is_refused_in_eval_too():
    """track_running_stats=False normalises by the batch's statistics in eval too, so a one-sample
    batch would be x_hat = 0 whatever it holds (Y = beta: a silent wrong answer; PyTorch refuses it).
    It is refused as in training; predict and evaluate never cut such a batch (a last batch of one
    joins the one before it), and
    one sample alone is refused naming the user's array."""
    layer = layer_for(F64, track_running_stats=False)
    for training in (True, False):
        layer.training = training
        with pytest.raises(gpubp.ShapeError, match=r"normalises by the batch's statistics and needs more than one "
                                                   r"value per channel, got input shape \(1, 3\)"):
            layer(np.ones((1, 3)))
    model = gpubp.Sequential([gpubp.Dense(3, 4), BatchNorm(4, track_running_stats=False), gpubp.Dense(4, 2)],
                             dtype="float64", seed=0)
    X, y = np.random.default_rng(0).normal(size=(5, 3)), np.array([0, 1, 0, 1, 1])
    model.eval()
    by_two = gpubp.predict(model, X, batch_size=2)  # batches of 2 and 3 samples
    np.testing.assert_array_equal(by_two, np.concatenate([model.forward(X[:2]), model.forward(X[2:])]))
    np.testing.assert_array_equal(gpubp.predict(model, X, batch_size=4), model.forward(X))  # one batch of 5
    with_batch_4 = gpubp.evaluate(model, X, y, batch_size=4)["loss"]
    assert with_batch_4 == pytest.approx(gpubp.evaluate(model, X, y, batch_size=5)["loss"], rel=1e-15)
    gpubp.fit(model, X, y, epochs=1, batch_size=3, validation_data=(X[:3], y[:3]), progress=False)
    for run in (lambda: gpubp.predict(model, X[:1]), lambda: gpubp.evaluate(model, X[:1], y[:1])):
        with pytest.raises(gpubp.ShapeError, match=r"X of shape \(1, 3\) does not fit the model: BatchNorm"):
            run()


def test_a_batchnorm_without_parameters_in_a_model():
    """affine=False: no parameters anywhere a model lists, draws, flattens, steps, checks or reduces
    them; its model trains as PyTorch's does (SGD with momentum, then Adam), 1e-10 in float64."""
    torch = pytest.importorskip("torch")
    model = gpubp.Sequential([gpubp.Dense(4, 6), BatchNorm(6, affine=False, momentum=None), gpubp.ReLU(),
                              gpubp.Dense(6, 3)], dtype="float64", seed=1)
    bn = model.layers[1]
    assert bn.params == {} and bn.grads == {} and bn.parameter_shapes() == {}
    assert bn.drawn_parameters(np.random.default_rng(0)) == {} and bn.reset_replaces() == ""
    assert list(model.parameter_shapes()) == ["0.W", "0.b", "3.W", "3.b"]
    assert "BatchNorm(6, eps=1e-05, momentum=None, affine=False)" in repr(model)
    model.reset_parameters(2)
    flat_params, flat_grads = model.flat
    assert flat_params.size == 4 * 6 + 6 + 6 * 3 + 3
    assert layout(model)["parameters"] == {k: tuple(s) for k, s in model.parameter_shapes().items()}
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6, affine=False, momentum=None),
                                 torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    with torch.no_grad():
        for t, name in ((tmodel[0], "0"), (tmodel[3], "3")):
            t.weight.copy_(torch.from_numpy(model.parameters()[f"{name}.W"].T))
            t.bias.copy_(torch.from_numpy(model.parameters()[f"{name}.b"]))
    rng = np.random.default_rng(3)
    loss = gpubp.SoftmaxCrossEntropy()
    for opt, topt in ((gpubp.SGD(lr=0.1, momentum=0.9), torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)),
                      (gpubp.Adam(lr=0.01), torch.optim.Adam(tmodel.parameters(), lr=0.01))):
        for _ in range(3):
            X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
            value = loss(model(X), y)
            model.zero_grad()
            model.backward(loss.backward())
            opt.step(model)
            topt.zero_grad()
            tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(X)), torch.from_numpy(y))
            tloss.backward()
            topt.step()
            close(float(value), tloss.item())
    close(model.parameters()["0.W"], tmodel[0].weight.detach().numpy().T)
    close(model.parameters()["3.b"], tmodel[3].bias.detach().numpy())
    close(bn.buffers["running_var"], tmodel[1].running_var.numpy())
    assert int(bn.buffers["num_batches_tracked"]) == int(tmodel[1].num_batches_tracked) == 6
    assert model.flat is not None  # the optimizers stepped the flat buffer the model keeps
    buckets = FlatBuckets([g.shape for g in model.gradients().values()], "float64", bucket_bytes=64)
    buckets.pack(list(model.gradients().values()))
    np.testing.assert_array_equal(buckets.flat, flat_grads)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    with pytest.warns(gpubp.GpubpWarning, match="0.b"):  # a bias right before BatchNorm: dL/db = 0
        assert gpubp.gradcheck(model, "softmax_cross_entropy", X, y, atol=1e-8, rtol=1e-6).ok


def test_image_model_with_every_option_fits_and_round_trips(tmp_path):
    """Conv2D -> BatchNorm(affine=False, track_running_stats=False) -> ... -> BatchNorm1d(momentum=None):
    fit (planned steps), evaluate, a checkpoint holding only the count."""
    model = gpubp.Sequential([Conv2D(1, 3, 3, padding=1), BatchNorm(3, affine=False, track_running_stats=False),
                              gpubp.ReLU(), Flatten(), gpubp.Dense(3 * 4 * 4, 5), BatchNorm(5, momentum=None),
                              gpubp.Dense(5, 2)], dtype="float64", seed=0)
    X, y = np.random.default_rng(0).normal(size=(12, 1, 4, 4)), np.arange(12) % 2
    history = gpubp.fit(model, X, y, epochs=3, batch_size=4, progress=False)
    assert np.isfinite(history.loss).all() and model.layers[1].buffers == {}
    assert sorted(model.buffers()) == ["5.num_batches_tracked", "5.running_mean", "5.running_var"]
    assert int(model.buffers()["5.num_batches_tracked"]) == 9
    path = checkpoint.save(tmp_path / "m.npz", model)
    loaded = checkpoint.load(path, "cpu").model
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(gpubp.predict(loaded, X), gpubp.predict(model, X))
    assert loaded.buffers()["5.num_batches_tracked"].dtype == np.int64


def test_checkpoint_keeps_the_count_and_refuses_a_bad_one(tmp_path, device):
    model = gpubp.Sequential([gpubp.Dense(4, 5), BatchNorm(5, momentum=None)], backend=device, dtype="float64", seed=0)
    for s in range(3):
        model(model.backend.asarray(data((6, 4), s)))
    path = checkpoint.save(tmp_path / "m.npz", model)
    with np.load(path) as saved:
        assert saved["buffer/1.num_batches_tracked"].dtype == np.int64
        assert int(saved["buffer/1.num_batches_tracked"]) == 3
    fresh = gpubp.Sequential.from_config(model.config(), backend=device, dtype="float64", seed=1)
    checkpoint.load_into(path, fresh)
    for k, v in model.buffers().items():
        np.testing.assert_array_equal(model.backend.to_numpy(v), fresh.backend.to_numpy(fresh.buffers()[k]))
    assert fresh.backend.is_own(fresh.buffers()["1.num_batches_tracked"])
    with pytest.raises(gpubp.InvalidValueError, match=r"num_batches_tracked is a count, a 0-d integer array >= 0, "
                                                      r"got int64 of shape \(\): -1"):
        fresh.load_buffers({**fresh.buffers(), "1.num_batches_tracked": np.int64(-1)})
    assert int(fresh.backend.to_numpy(fresh.buffers()["1.num_batches_tracked"])) == 3  # nothing written


def test_resumed_run_repeats_an_uninterrupted_one_with_the_cumulative_average(tmp_path):
    def make(seed=0):
        return gpubp.Sequential([gpubp.Dense(6, 8), BatchNorm(8, momentum=None), gpubp.ReLU(),
                                 BatchNorm(8, affine=False, momentum=None), gpubp.Dense(8, 3)], dtype="float64",
                                seed=seed)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
    run = dict(epochs=4, batch_size=10, progress=False, optimizer="adam", lr=0.01)
    whole = make()
    gpubp.fit(whole, X, y, **run)
    first = make()
    gpubp.fit(first, X, y, **{**run, "epochs": 2}, checkpoint_path=tmp_path / "c.npz", checkpoint_every=2)
    assert int(first.buffers()["1.num_batches_tracked"]) == 8
    resumed = make(seed=5)
    gpubp.fit(resumed, X, y, **run, resume_from=tmp_path / "c.npz")
    for k, v in whole.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)
    for k, v in whole.buffers().items():
        np.testing.assert_array_equal(resumed.buffers()[k], v)
    assert int(resumed.buffers()["3.num_batches_tracked"]) == 16


def test_config_repr_and_older_configs():
    for options in OPTIONS:
        layer = BatchNorm(4, **options)
        config = json.loads(json.dumps(layer.config()))
        again = layer_from_config(config)
        assert again.config() == layer.config() and repr(again) == repr(layer)
        assert again.parameter_shapes() == ({"gamma": (4,), "beta": (4,)} if options["affine"] else {})
    assert repr(BatchNorm(4, momentum=None, affine=False, track_running_stats=False)) == \
        "BatchNorm(4, eps=1e-05, momentum=None, affine=False, track_running_stats=False)"
    assert BatchNorm(4).config() == {"type": "BatchNorm", "num_features": 4, "eps": 1e-5, "momentum": 0.1}
    old = layer_from_config({"type": "BatchNorm", "num_features": 4, "eps": 1e-5, "momentum": 0.1})
    assert old.affine and old.track_running_stats and sorted(old.buffers) == ["running_mean", "running_var"]
    ported = BatchNorm(4, 1e-5, None, False, False)  # PyTorch's positional order
    assert ported.config() == BatchNorm(4, momentum=None, affine=False, track_running_stats=False).config()


@pytest.mark.parametrize("make, error, words", [
    (lambda: BatchNorm(3, affine="yes"), gpubp.InvalidValueError, "BatchNorm affine must be True or False, got 'yes'"),
    (lambda: BatchNorm(3, affine=None), gpubp.InvalidValueError, "BatchNorm affine must be True or False, got None"),
    (lambda: BatchNorm(3, track_running_stats=1), gpubp.InvalidValueError,
     "BatchNorm track_running_stats must be True or False, got 1"),
    (lambda: BatchNorm(3, momentum=-0.1), gpubp.InvalidValueError, "BatchNorm momentum must be a finite number"),
    (lambda: BatchNorm(3, momentum="none"), gpubp.InvalidValueError, "BatchNorm momentum must be a finite number"),
    (lambda: BatchNorm(3, 1e-5, 0.1, True, True, "cuda"), gpubp.InvalidValueError,
     r"BatchNorm takes num_features, eps, momentum, affine and track_running_stats by position, got more .*'cuda'"),
    (lambda: BatchNorm(3, dtype="float64"), gpubp.InvalidValueError, "BatchNorm does not support dtype='float64'"),
])
def test_bad_arguments(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_options_set_later():
    """affine and track_running_stats are fixed when the layer is made, and so is whether momentum is
    None (the count exists or not); a number may still change to another number."""
    layer, cumulative = BatchNorm(3), BatchNorm(3, momentum=None)
    for name, value in (("affine", False), ("track_running_stats", False)):
        with pytest.raises(gpubp.InvalidValueError, match=f"BatchNorm {name} is fixed when it is made"):
            setattr(layer, name, value)
    with pytest.raises(gpubp.InvalidValueError, match=r"momentum=None .* is chosen when the layer is made: "
                                                      r"BatchNorm\(3, eps=1e-05, momentum=0.1\) cannot take momentum=None"):
        layer.momentum = None
    with pytest.raises(gpubp.InvalidValueError, match=r"cannot take momentum=0.2; make a new BatchNorm"):
        cumulative.momentum = 0.2
    layer.momentum = 0.2
    cumulative.momentum = None
    assert layer.momentum == 0.2 and cumulative.momentum is None


def test_buffers_by_option():
    assert BatchNorm(3, track_running_stats=False).buffers == {}
    layer = BatchNorm(3, track_running_stats=False)
    layer.load_buffers({})
    with pytest.raises(gpubp.ShapeError, match=r"has buffers \[\], got \['running_mean'\]"):
        layer.load_buffers({"running_mean": np.zeros(3)})
    layer = BatchNorm(3, momentum=None)
    held = layer.buffers["num_batches_tracked"]
    layer.buffers["num_batches_tracked"] = 7  # as PyTorch's state dict would set it
    assert layer.buffers["num_batches_tracked"] is held and int(held) == 7 and held.dtype == np.int64
    for value, words in ((2.5, "got float64 of shape"), (np.ones(2, np.int64), r"got int64 of shape \(2,\)"),
                         (True, "got bool"), (np.uint64(2**63), "got uint64 of shape"), ("x", "got <U1")):
        with pytest.raises(gpubp.InvalidValueError, match=f"num_batches_tracked is a count.*{words}"):
            layer.buffers["num_batches_tracked"] = value
    assert int(held) == 7
    with pytest.raises(gpubp.ShapeError, match=r"has buffers \['num_batches_tracked', 'running_mean', 'running_var'\]"):
        layer.load_buffers({"running_mean": np.zeros(3), "running_var": np.ones(3)})


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
@pytest.mark.parametrize("kind", SHAPES)
def test_bound_steps_write_what_the_checked_methods_return(options, kind):
    """A step plan binds BatchNorm's cores to its buffers (it refused them before they took out=);
    more in test_norm_planned.py."""
    X, dY = data(SHAPES[kind], 3), data(SHAPES[kind], 4)
    eager, bound = BatchNorm(3, backend=F64, **options), BatchNorm(3, backend=F64, **options)
    Y, dX = np.empty_like(X), np.empty_like(X)
    forward, backward = bound.bind(X, Y, dY, dX)
    for training in (True, False):
        eager.training = bound.training = training
        forward()
        backward()
        np.testing.assert_array_equal(Y, eager.forward(X))
        np.testing.assert_array_equal(dX, eager.backward(dY))
        for name, b in eager.buffers.items():
            np.testing.assert_array_equal(bound.buffers[name], b)
