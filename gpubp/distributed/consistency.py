"""What must agree across ranks before they train together, and how a disagreement is told.

``rank_facts`` lists this rank's versions and, with a model, its device kind (not the device
index: ranks use different GPUs), dtype and architecture; ``data_fingerprint`` sums up the
training data (which every rank must hold alike); ``difference`` describes one field that
differs from rank 0, down to the first layer or parameter that differs. ``refuse_differences``
and ``refuse_other_layouts`` compare every rank's with rank 0's and raise the same MismatchError on
every rank.
"""
from __future__ import annotations

import hashlib
import platform
import socket

import numpy as np

from .._compat import cupy, to_host
from .._version import __version__
from ..errors import InvalidValueError
from .errors import DistributedError, MismatchError


def rank_facts(model=None, optimizer=None) -> dict:
    """What must agree across ranks: versions, and with a model its device kind, dtype and architecture."""
    facts = {"gpubp": __version__, "numpy": np.__version__, "python": ".".join(platform.python_version_tuple()[:2])}
    if model is not None:
        backend = model.backend
        facts.update({"device kind": _device_kind(backend), "dtype": backend.dtype.name,
                      "architecture": model.config(), "parameter shapes": model.parameter_shapes()})
        if backend.device.startswith("cuda"):
            facts["cupy"] = cupy.__version__
    if optimizer is not None:
        facts["optimizer"] = repr(optimizer)
    return facts


def data_fingerprint(*arrays) -> str:
    """Host arrays (the first one the samples, e.g. X, y, validation X, y) in a few words: how
    many samples, their shape, and a sha256 of every array's dtype, shape and bytes (of the values'
    repr for an object array, whose bytes are pointers that differ from process to process)."""
    if not arrays:
        raise InvalidValueError("data_fingerprint needs at least one array (the samples first)")
    digest, shapes = hashlib.sha256(), []
    for i, a in enumerate(arrays):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as exc:  # ragged lists; a GPU array
            raise InvalidValueError(f"data_fingerprint: array {i} ({type(a).__name__}) cannot be read as one host "
                                    f"array ({exc})") from None
        if a.ndim == 0:
            raise InvalidValueError(f"data_fingerprint: array {i} must hold samples along its first axis, got "
                                    f"{_short(a.tolist(), 60)}")
        a = np.ascontiguousarray(a)
        digest.update(str((a.dtype.str, a.shape)).encode())
        digest.update(repr(a.tolist()).encode() if a.dtype.hasobject else a.data)
        shapes.append(a.shape)
    return f"{shapes[0][0]} samples of {shapes[0][1:]}, sha256 {digest.hexdigest()[:12]}"


def refuse_differences(mpi_comm, mine: dict) -> None:
    """Refuse, on every rank alike, facts (``rank_facts`` and more) that differ from rank 0's,
    naming the first rank that differs, its host and what differs."""
    everyone = mpi_comm.allgather((socket.gethostname(), mine))
    host0, ref = everyone[0]
    for r, (host, theirs) in enumerate(everyone[1:], start=1):
        fields = [k for k in sorted(set(ref) | set(theirs)) if ref.get(k) != theirs.get(k)]
        if fields:
            detail = "; ".join(difference(k, ref.get(k), theirs.get(k), r) for k in fields)
            shards = "; data parallelism takes the whole training set on every rank and gives each rank its share " \
                     "of every batch itself: give every rank the same data, not a shard per rank" \
                if "training data" in fields else ""
            raise MismatchError(f"rank {r} of {len(everyone)} (on {host}) differs from rank 0 (on {host0}): "
                                f"{detail}; every rank must run the same gpubp, NumPy, model and data on the "
                                f"same kind of device{shards}", r, fields)


def refuse_other_layouts(mpi_comm, layout) -> None:
    """Refuse, on every rank alike, a collective whose arrays (``layout``: dtypes and shapes, not
    devices, as ranks use different GPUs) differ between ranks: MPI would sum past the end of the
    shorter buffers, or fail on one rank only."""
    everyone = mpi_comm.allgather(layout)
    r = next((r for r, theirs in enumerate(everyone) if theirs != everyone[0]), None)
    if r is not None:
        raise MismatchError(f"rank {r} of {len(everyone)} passes other arrays to a collective than rank 0: "
                            f"(dtype, shapes) {_short(everyone[0])} on rank 0, {_short(everyone[r])} on "
                            f"rank {r}; every rank must pass arrays of the same shapes and dtypes, in the "
                            f"same order", r, ["arrays"])


def state_digests(model, optimizer=None) -> dict:
    """What must stay alike on every rank of a data-parallel run, by name: ``values``, a digest of each
    parameter, buffer (Dropout's seed and step, which advance alike on every rank: a rank without
    samples takes each step's draw too) and optimizer slot; ``settings``, the optimizer's lr, step
    count and hyperparameters.
    A model or optimizer this rank cannot sum up gives ``{"error": ...}``, which differs from any rank's."""
    try:
        values = {f"parameter {k}": _digest(a) for k, a in model.parameters().items()}
        values.update({f"buffer {k}": _digest(a) for k, a in model.buffers().items()})
        settings = {}
        if optimizer is not None:
            settings = {"optimizer lr": optimizer.lr, "optimizer step count": optimizer.t,
                        **{f"optimizer {k}": v for k, v in getattr(optimizer, "hyper", {}).items()}}
            values.update({f"optimizer slot {s} of {name}": _digest(a)
                           for name, slots in optimizer.state.items() for s, a in slots.items()})
    except Exception as exc:  # junk a callback put in the model: this rank's own difference
        return {"values": {}, "settings": {"error": f"{type(exc).__name__}: {exc}"}}
    return {"values": values, "settings": settings}


def refuse_apart(mpi_comm, mine: dict, what: str) -> None:
    """Refuse, on every rank alike, ranks whose ``state_digests`` differ from rank 0's at the end of
    ``what``, naming the first such rank, the values it holds otherwise and the settings that differ."""
    everyone = mpi_comm.allgather(mine)
    ours = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        values = [k for k in dict.fromkeys([*ours["values"], *theirs["values"]])
                  if ours["values"].get(k) != theirs["values"].get(k)]
        settings = [difference(k, ours["settings"].get(k, "(none)"), theirs["settings"].get(k, "(none)"), r)
                    for k in dict.fromkeys([*ours["settings"], *theirs["settings"]])
                    if ours["settings"].get(k) != theirs["settings"].get(k)]
        if values or settings:
            named = ", ".join(values[:3]) + (f" and {len(values) - 3} more" if len(values) > 3 else "")
            held = f"holds other values than rank 0 in {named}" if values else "differs from rank 0"
            raise MismatchError(f"the ranks' models came apart by the end of {what}: rank {r} of {len(everyone)} "
                                f"{held}{'; ' if settings else ''}{'; '.join(settings)} (changed on some ranks only, "
                                f"by a callback?); every rank stopped: change parameters and optimizer settings alike "
                                f"on every rank", r, values + settings)
    if "error" in ours["settings"]:  # alike on every rank, so no difference above: not a pass
        error = DistributedError(f"no rank can sum up its model and optimizer at the end of {what} "
                                 f"({ours['settings']['error']}), so whether they came apart is unknown; every rank "
                                 f"stopped: keep arrays of the model's backend in its parameters and buffers")
        error.everywhere = True  # every rank raises it, from the same allgather
        raise error


def _digest(array) -> str:
    a = np.ascontiguousarray(to_host(array))
    return hashlib.blake2b(a.data, digest_size=8).hexdigest()


def _device_kind(backend) -> str:
    if not backend.device.startswith("cuda"):
        return "cpu"
    name = cupy.cuda.runtime.getDeviceProperties(int(backend.device.split(":")[1]))["name"]
    return f"cuda ({name.decode() if isinstance(name, bytes) else name})"


def difference(key, ours, theirs, rank) -> str:
    """``key: <rank 0's> on rank 0, <theirs> on rank r``; for lists (layers) and dicts (shapes) only the
    first entry that differs."""
    where = ""
    if isinstance(ours, list) and isinstance(theirs, list):
        i = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        where, ours, theirs = f" layer {i}", _item(ours, i), _item(theirs, i)
    elif isinstance(ours, dict) and isinstance(theirs, dict):
        name = next(k for k in [*ours, *theirs] if ours.get(k) != theirs.get(k))
        where, ours, theirs = f" {name}", ours.get(name, "(none)"), theirs.get(name, "(none)")
    return f"{key}{where}: {_short(ours)} on rank 0, {_short(theirs)} on rank {rank}"


def _item(items, i):
    return items[i] if i < len(items) else f"(none: {len(items)} layers)"


def _short(value, limit=160) -> str:
    text = value if isinstance(value, str) and value.startswith("(none") else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
