"""Run under ``mpiexec -n N``: the checks of tests/distributed/test_mpi_world.py, one launch for all.

Every rank writes ``<out>/rank<r>.json``: per training case the worst norm-wise difference
between its weights and a single process's at any step (and the first step and parameter out of
tolerance), then the bucket, broadcast, scalar and mismatch checks. The driver loop below is
the data-parallel step fit will adopt:

    for local, global_n in comm.local_batches(n, batch_size, seed, epoch):
        with comm.guard(...):  forward/backward on X[local] (skipped when empty)
        comm.allreduce_gradients_(model, len(local), global_n);  optimizer.step(model)
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed import MismatchError, epoch_order
from gpubp.distributed.mpi import Communicator, world
from gpubp.tools.parity.tolerance import POLICY, Tolerance, compare

TOLERANCE = {"float64": Tolerance(rtol=1e-12, atol=0.0), "float32": POLICY[np.dtype("float32")]}
OPTIMIZERS = {"sgd": lambda: gpubp.SGD(lr=0.2),
              "momentum": lambda: gpubp.SGD(lr=0.1, momentum=0.9),
              "nesterov_wd": lambda: gpubp.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
              "adam": lambda: gpubp.Adam(lr=0.01),
              "adamw": lambda: gpubp.AdamW(lr=0.01, weight_decay=0.05)}
# (optimizer, dtype, loss, samples, batch size): 23/8 ends with a short batch of 7; 7/3 ends with
# one sample (the second rank gets none); 5/1 gives the second of 2 ranks no sample ever
CASES = [(opt, "float64", "softmax_cross_entropy", 23, 8) for opt in OPTIMIZERS] + [
    ("sgd", "float64", "mse", 7, 3), ("momentum", "float64", "softmax_cross_entropy", 7, 3),
    ("adam", "float64", "softmax_cross_entropy", 5, 1), ("adam", "float64", "mse", 23, 8),
    ("sgd", "float32", "softmax_cross_entropy", 23, 8), ("adam", "float32", "mse", 23, 8)]
EPOCHS, SEED, WIDTHS = 3, 11, (5, [7], 3)


def data(n, loss):
    rng = np.random.default_rng(1234 + n)
    X = rng.standard_normal((n, WIDTHS[0]))
    y = rng.integers(0, WIDTHS[2], n) if loss == "softmax_cross_entropy" else rng.standard_normal((n, WIDTHS[2]))
    return X, y


def model(device, dtype, seed, hidden=WIDTHS[1]):
    return gpubp.mlp(WIDTHS[0], hidden, WIDTHS[2], activation="tanh", backend=device, dtype=dtype, seed=seed)


def dropout_model(device, dtype, seed):
    """Dropout between the layers: its seed is drawn from the model's, so it differs by rank until
    rank 0's is broadcast, and its mask is drawn by element of the global batch."""
    return gpubp.Sequential([gpubp.Dense(WIDTHS[0], 9), gpubp.Tanh(), gpubp.Dropout(0.4), gpubp.Dense(9, 7),
                             gpubp.ReLU(), gpubp.Dropout(0.2), gpubp.Dense(7, WIDTHS[2])],
                            backend=device, dtype=dtype, seed=seed)


def batchnorm_model(device, dtype, seed):
    """BatchNorm with momentum and with the cumulative average: each normalises by the global batch's
    statistics, summed over the ranks' shares, and moves its running estimates by them. The Dense
    layers before them have no bias: its gradient is 0 but for rounding, which Adam would scale up
    to steps of lr in directions that differ with the order of the additions."""
    return gpubp.Sequential([gpubp.Dense(WIDTHS[0], 9, bias=False), gpubp.BatchNorm(9), gpubp.Tanh(),
                             gpubp.Dense(9, 7, bias=False),
                             gpubp.BatchNorm(7, momentum=None), gpubp.ReLU(), gpubp.Dense(7, WIDTHS[2])],
                            backend=device, dtype=dtype, seed=seed)


MODELS = {"mlp": model, "dropout": dropout_model, "batchnorm": batchnorm_model}


def train_step(net, loss, opt, X, y):
    """One single-process step, as fit takes it; returns the batch's loss sum (host float)."""
    value = loss.forward(net.forward(X), y)
    net.zero_grad()
    net.backward(loss.backward(), input_grad=False)
    opt.step(net)
    return float(value) * X.shape[0]


def training_case(comm, device, opt_name, dtype, loss_name, n, batch_size):
    """N ranks with global batch B against one process with batch B, compared after every step."""
    X, y = data(n, loss_name)
    ref, dist = model(device, dtype, seed=100), model(device, dtype, seed=100 + comm.rank)  # inits differ
    ref_opt, dist_opt = OPTIMIZERS[opt_name](), OPTIMIZERS[opt_name]()
    comm.broadcast_training_state_(dist, dist_opt)  # rank 0's draw (seed 100, the reference's) everywhere
    start_equal = _digest(dist) == _digest(ref)
    ref_loss, dist_loss = gpubp.losses.get_loss(loss_name), gpubp.losses.get_loss(loss_name)
    Xd, yd = dist.backend.asarray(X), dist.backend.asarray(y)
    tol, worst, first_bad, step, sums = TOLERANCE[dtype], 0.0, None, 0, []
    for epoch in range(EPOCHS):
        order, ref_sum, local_sum = epoch_order(n, SEED, epoch), 0.0, 0.0
        for (local, global_n), lo in zip(comm.local_batches(n, batch_size, SEED, epoch), range(0, n, batch_size)):
            batch = order[lo:lo + batch_size]
            ref_sum += train_step(ref, ref_loss, ref_opt, Xd[batch], yd[batch])
            with comm.guard(f"step {step}"):
                if len(local):
                    value = dist_loss.forward(dist.forward(Xd[local]), yd[local])
                    dist.zero_grad()
                    dist.backward(dist_loss.backward(), input_grad=False)
                    local_sum += float(value) * len(local)
            comm.allreduce_gradients_(dist, len(local), global_n)
            dist_opt.step(dist)
            for name, p in ref.parameters().items():
                d = compare(dist.backend.to_numpy(p), dist.backend.to_numpy(dist.parameters()[name]), tol)
                worst = max(worst, d.max_rel)
                if not d.ok and first_bad is None:
                    first_bad = {"step": step, "epoch": epoch, "parameter": name, "max_rel": d.max_rel}
            step += 1
        total, count = comm.allreduce_scalars(local_sum, sum(len(s) for s, _ in comm.local_batches(
            n, batch_size, SEED, epoch)))
        sums.append({"single": ref_sum / n, "reduced": total / count, "count": count})
    return {"start_equal": start_equal, "worst_rel": worst, "first_bad": first_bad, "steps": step, "epoch_loss": sums,
            "digest": _digest(dist), "rtol": tol.rtol}


def _digest(net):
    h = hashlib.sha256()
    for name, p in net.parameters().items():
        h.update(name.encode() + net.backend.to_numpy(p).tobytes())
    return h.hexdigest()


def bucket_checks(comm_world, device):
    """Bucketed sums equal per-array MPI sums exactly; one collective per bucket; buffers reused."""
    comm = Communicator(device=device.split(":")[0] if device != "cpu" else "cpu", transport="mpi",
                        bucket_bytes=1000)
    shapes = [(3, 5), (17,), (4, 4, 2), (1000,), (1,)]
    out = {}
    for dtype in ("float64", "float32"):
        rng = np.random.default_rng(comm.rank)
        host = [rng.standard_normal(s).astype(dtype) for s in shapes]
        backend = gpubp.get_backend(comm.device, dtype)
        arrays = [backend.asarray(a) for a in host]
        expected = []
        for a in host:
            total = np.empty_like(a)
            comm.mpi.Allreduce(a * np.asarray(0.25, dtype), total)  # one call per array, the naive way
            expected.append(total)
        before = comm.transport.calls
        comm.allreduce_sum_(arrays, scale=0.25)
        calls = comm.transport.calls - before
        key = (backend.device, dtype, tuple(shapes))
        flat_id = id(comm._plans[key].flat)
        comm.allreduce_sum_([backend.asarray(a) for a in host], scale=0.25)  # same shapes: plan reused
        out[dtype] = {"equal": all(np.array_equal(backend.to_numpy(a), e) for a, e in zip(arrays, expected)),
                      "calls": calls, "elements": sum(a.size for a in host), "itemsize": np.dtype(dtype).itemsize,
                      "bucket_bytes": comm.bucket_bytes, "reused": id(comm._plans[key].flat) == flat_id}
    return out


def broadcast_checks(comm, device):
    """Parameters and optimizer slots that exist only on rank 0 arrive everywhere; scalars sum."""
    net, opt = model(device, "float64", seed=50 + comm.rank), gpubp.Adam(lr=0.05)
    if comm.rank == 0:  # slots exist only on rank 0, and t = 1
        X, y = data(6, "mse")
        train_step(net, gpubp.losses.get_loss("mse"), opt, net.backend.asarray(X), net.backend.asarray(y))
    comm.broadcast_training_state_(net, opt)
    slots = {f"{n}.{s}": hashlib.sha256(net.backend.to_numpy(a).tobytes()).hexdigest()
             for n, st in opt.state.items() for s, a in st.items()}
    return {"digest": _digest(net), "t": opt.t, "slots": slots,
            "scalars": comm.allreduce_scalars(comm.rank + 1, 2.5, 0)}


def mismatch_checks(comm, device):
    """Agreeing ranks pass; a differing rank is named, on every rank, with what differs."""
    out = {"same": sorted(comm.check_consistent(model(device, "float64", 0), gpubp.Adam()))}
    trials = {"numpy": lambda: comm.check_consistent(facts={"numpy": "1.26.0"} if comm.rank == 1 else None),
              "device": lambda: comm.check_consistent(
                  model(device, "float64", 0), facts={"device kind": "cuda (NVIDIA H200)"} if comm.rank == 1 else None),
              "architecture": lambda: comm.check_consistent(model(device, "float64", 0, [8] if comm.rank == 1 else [7])),
              "dtype": lambda: comm.check_consistent(model(device, "float32" if comm.rank == 1 else "float64", 0)),
              "data": lambda: gpubp.fit(model(device, "float64", 0), data(7, "mse")[0] + (comm.rank == 1),
                                        data(7, "mse")[1], loss="mse", epochs=1, progress=False, comm=comm)}
    for what, trial in trials.items():
        try:
            trial()
            out[what] = None
        except MismatchError as exc:
            out[what] = {"rank": exc.rank, "fields": exc.fields, "message": str(exc)}
    return out


def fit_case(comm, device, opt_name, dtype, loss_name, n, batch_size, out, kind="mlp", plan=True):
    """``fit(..., comm=comm)`` on 2 ranks against ``fit`` in one process: weights, buffers (Dropout's
    seeds and steps), history, and the checkpoint (written by rank 0 only)."""
    X, y = data(n, loss_name)
    build = MODELS[kind]
    ref, dist = build(device, dtype, seed=100), build(device, dtype, seed=100 + comm.rank)  # inits differ
    kwargs = dict(loss=loss_name, epochs=EPOCHS, batch_size=batch_size, seed=SEED, progress=False, plan=plan)
    ref_history = gpubp.fit(ref, X, y, optimizer=OPTIMIZERS[opt_name](), **kwargs)
    path = Path(out, f"fit-{kind}-{opt_name}-{n}-{batch_size}-{plan}.npz")
    history = gpubp.fit(dist, X, y, optimizer=OPTIMIZERS[opt_name](), comm=comm, checkpoint_path=path,
                        checkpoint_every=EPOCHS, **kwargs)
    worst = max(compare(ref.backend.to_numpy(p), dist.backend.to_numpy(dist.parameters()[k]),
                        TOLERANCE[dtype]).max_rel for k, p in ref.parameters().items())
    comm.barrier()  # rank 0 has written the checkpoint
    saved = gpubp.checkpoint.load(path, "cpu", dtype).model if path.exists() else None
    bound = comm._bound.get(dist)
    in_buffer = bound is not None and all(g is v for g, v in zip(dist.gradients().values(), bound.gradient_views))
    buffers = {k: np.asarray(dist.backend.to_numpy(a)).tolist() for k, a in dist.buffers().items()}
    single = {k: np.asarray(ref.backend.to_numpy(a)).tolist() for k, a in ref.buffers().items()}
    return {"worst_rel": worst, "buffers": buffers, "single_buffers": single,
            "shares": [getattr(layer, "share", None) for layer in dist.layers], "loss": history.loss, "single_loss": ref_history.loss, "gradients_in_buffer": in_buffer,
            "metric": history.metric, "single_metric": ref_history.metric, "digest": _digest(dist),
            "checkpoint_equal": saved is not None and _digest(saved) == _digest(dist),
            "temp_files": sorted(p.name for p in Path(out).iterdir() if p.name.startswith(".gpubp-"))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="two training cases only")
    args = parser.parse_args()
    comm = world(device=args.device)
    device = comm.device
    cases = CASES[:1] + CASES[3:4] if args.quick else CASES
    result = {"rank": comm.rank, "size": comm.size, "local_rank": comm.local_rank, "device": device,
              "transport": comm.transport.name, "training": {}}
    for opt_name, dtype, loss, n, batch_size in cases:
        key = f"{opt_name}/{dtype}/{loss}/n{n}/b{batch_size}"
        result["training"][key] = training_case(comm, device, opt_name, dtype, loss, n, batch_size)
    # Dropout and BatchNorm: planned and eager, a short last batch; (7/3) a last batch of one sample,
    # which leaves rank 1 without samples while its Dropout still takes the step's draw; (11/3) shares
    # of one sample, which BatchNorm normalises by the global batch's statistics
    fits = [("adam", "float64", "softmax_cross_entropy", 23, 8), ("momentum", "float64", "mse", 7, 3),
            ("adam", "float64", "softmax_cross_entropy", 23, 8, "dropout"),
            ("momentum", "float64", "mse", 7, 3, "dropout", False),
            ("adam", "float64", "softmax_cross_entropy", 23, 8, "batchnorm"),
            ("momentum", "float64", "mse", 11, 3, "batchnorm", False)]
    result["fit"] = {"/".join(map(str, c[:1] + c[2:])): fit_case(comm, device, *c[:5], args.out, *c[5:])
                     for c in fits}
    result["buckets"] = bucket_checks(comm, device)
    result["broadcast"] = broadcast_checks(comm, device)
    result["mismatch"] = mismatch_checks(comm, device)
    result["collective_calls"] = comm.transport.calls
    Path(args.out, f"rank{comm.rank}.json").write_text(json.dumps(result, indent=1))
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
