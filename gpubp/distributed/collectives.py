"""The communicator's collectives on arrays (``ArrayCollectives``, a base of ``Communicator``): sums
and broadcasts in place over every rank, bucketed (``buckets.py``: one flat buffer per dtype and
device, allocated once per layout, one collective per bucket), a model's gradients reduced in the
flat buffer they live in, and rank 0's training state on every rank.

For a step over a global batch of B samples, rank r holding n_r of them::

    g = sum_r (n_r / B) g_r        (the gradient of the mean loss over the global batch)
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from .. import _checks
from .._compat import is_cupy_array, to_host
from ..backend import backend_of
from ..errors import DTypeError, GpubpError, InvalidValueError
from .buckets import FlatBuckets
from .consistency import difference, refuse_other_layouts
from .errors import MismatchError
from .faults import agree_on_call
from .sharding import grad_scale


class ArrayCollectives:
    """``Communicator``'s collectives on arrays: over ``self.transport`` and ``self.mpi``, in buckets
    of ``self.bucket_bytes``, their flat buffers kept in ``self._plans`` (by layout) and
    ``self._bound`` (by model)."""

    def allreduce_sum_(self, arrays, scale=None) -> list:
        """Replace each array by its sum over all ranks (times ``scale`` on this rank first), in place,
        one collective per bucket; arrays of several dtypes or devices make one buffer each."""
        groups, scale = self._groups(arrays, "allreduce_sum_", lambda: _checked_scale(scale, arrays))
        return self._sum_(groups, scale, arrays)

    def allreduce_sum_alike_(self, arrays) -> list:
        """``allreduce_sum_`` of arrays that every rank passes alike by construction (``fit``'s sums inside a
        step, train/shares.py, several per BatchNorm layer and step): without the agreement all-reduce first;
        a call refused here is raised on this rank alone, and fit's step guard stops every rank."""
        groups, _ = self._groups(arrays, "allreduce_sum_", lambda: None, agree=False)
        return self._sum_(groups, None, arrays)

    def _sum_(self, groups, scale, arrays) -> list:
        for backend, plan, group in groups:
            with backend.activate():  # CuPy kernels run on the arrays' own device
                plan.pack(group, scale)
                for bucket in plan.buckets:
                    self.transport.allreduce_(bucket)
                plan.unpack(group)
        return list(arrays)

    def allreduce_gradients_(self, model, local_n: int, global_n: int, scaled=False) -> None:
        """The model's gradients become ``sum_r (n_r / B) g_r``: the gradient of the mean loss over the
        global batch of ``B = global_n`` samples. ``local_n == 0``: this rank adds zeros (its stale
        gradients are not read). ``scaled``: each gradient already carries its factor ``n_r / B``
        (``fit`` multiplies dL/dY by it before the backward), so only the reduction runs.

        The gradients live in the communicator's flat buffer (``model.keep_gradients_in`` its
        views, on the first call and again whenever the model has replaced them), so a step
        scales the buffer and reduces its buckets in place: no copy in or out.

        Every rank must pass a model of the same gradients (names, shapes, dtype), cut into the same
        buckets: agreed in one small all-reduce on the first call for a model and again when its
        layout changes here, else the same MismatchError on every rank, nothing summed; remembered,
        so later steps run no collective but the buckets' (change a model alike on every rank)."""
        self._reduce_gradients(model, local_n, global_n, scaled, agree=True)

    def allreduce_gradients_alike_(self, model, local_n: int, global_n: int, scaled=False) -> None:
        """``allreduce_gradients_`` of a model every rank has alike by construction (``fit``, whose step
        guard agrees on the model's layout before this sum): never the agreement all-reduce."""
        self._reduce_gradients(model, local_n, global_n, scaled, agree=False)

    def _reduce_gradients(self, model, local_n, global_n, scaled, agree):
        """The sum of ``allreduce_gradients_`` (``agree``) or ``allreduce_gradients_alike_``. A call refused here
        before its model was agreed on is refused on every rank alike, in that agreement (the other ranks
        are in it); after, on this rank (the others sum: a guard, as fit's, tells them)."""
        error = plan = None
        try:
            self._open()
            check_model("allreduce_gradients_", model)
            scaled = _checks.flag("allreduce_gradients_: scaled", scaled)
            scale = grad_scale(local_n, global_n)
            grads = model.gradients()
            plan = self._bound.get(model)
            if plan is None or any(g is not v for g, v in zip(grads.values(), plan.gradient_views)):
                plan = self._bound[model] = self._bind(model, grads)
        except GpubpError as exc:
            if not agree or self._agreed_on(model):
                raise
            error = exc
        if agree and (error is not None or self._agreed.get(model) != plan.layout_token):
            self._agree_gradients(model, plan, error)
        backend = model.backend
        with backend.activate():
            if scale == 0:
                plan.flat.fill(0)
            elif scale != 1 and not scaled:
                plan.flat *= backend.dtype.type(scale)
            for bucket in plan.buckets:
                self.transport.allreduce_(bucket)

    def _agreed_on(self, model) -> bool:
        """Whether every rank agreed on a layout of ``model``'s gradients (False for what is no model)."""
        try:
            return model in self._agreed
        except TypeError:  # not weakly referable: no model
            return False

    def _agree_gradients(self, model, plan, error=None) -> None:
        """Refuse, on every rank alike, a call refused on any rank (``error``: this rank's) or ranks whose
        gradient buffers differ (names, shapes, dtype, buckets): one all-reduce of a token of
        ``plan.layout``; a gather of the layouts only when they differ. Remembers the layout agreed."""
        token = 0 if error is not None else plan.layout_token
        if not agree_on_call(self, "the call of allreduce_gradients_", error, token):
            everyone = self.mpi.allgather(plan.layout)
            r = next(r for r, theirs in enumerate(everyone) if theirs != everyone[0])
            ours, theirs = everyone[0], everyone[r]
            fields = [k for k in ours if ours[k] != theirs[k]]
            detail = "; ".join(difference(k, ours[k], theirs[k], r) for k in fields)
            raise MismatchError(f"allreduce_gradients_: rank {r} of {self.size} passes a model of other gradients than "
                                f"rank 0: {detail}; every rank must pass a model of the same parameters (names, shapes, "
                                f"dtype) and a communicator of the same bucket_bytes; nothing was summed", r, fields)
        self._agreed[model] = plan.layout_token

    def _bind(self, model, grads) -> FlatBuckets:
        """A flat buffer for ``model``'s gradients: the one they live in already (``Sequential.flat``,
        which also keeps the optimizer's update one kernel), else a new one they move into."""
        backend, flat = model.backend, getattr(model, "flat", None)
        with backend.activate():
            plan = FlatBuckets([g.shape for g in grads.values()], backend.dtype, backend.xp, self.bucket_bytes,
                               flat=None if flat is None else flat[1])
        if flat is None:
            views = dict(zip(grads, (v.reshape(g.shape) for v, g in zip(plan.views(), grads.values()))))
            model.keep_gradients_in(views)
            grads = views
        plan.gradient_views = list(grads.values())
        plan.layout = {"dtype": plan.dtype.name, "gradients": {k: tuple(g.shape) for k, g in grads.items()},
                       "bucket elements": plan.per_bucket}
        digest = hashlib.blake2b(repr(plan.layout).encode(), digest_size=7).digest()
        plan.layout_token = int.from_bytes(digest, "little") + 1  # 0: none agreed
        return plan

    def broadcast_(self, arrays, root=0) -> list:
        """Overwrite each array, in place, with rank ``root``'s values (bucketed like the sums)."""
        groups, root = self._groups(arrays, "broadcast_", lambda: self._root(root), same=True)
        for backend, plan, group in groups:
            with backend.activate():
                plan.pack(group)
                for bucket in plan.buckets:
                    self.transport.bcast_(bucket, root)
                plan.unpack(group)
        return list(arrays)

    def broadcast_training_state_(self, model, optimizer=None, root=0) -> None:
        """Rank ``root``'s parameters and buffers (Dropout's seed and step: the same masks on every rank)
        and, with ``optimizer``, its step count, lr and slots, on every rank (slots that exist only on
        ``root``, e.g. before a fresh rank's first step, are created)."""
        error = None
        try:  # refused on every rank alike, before the first broadcast
            self._open()
            check_model("broadcast_training_state_", model, optimizer)
            root = self._root(root)
        except GpubpError as exc:
            error = exc
        if not agree_on_call(self, "the call of broadcast_training_state_", error, root if error is None else 0):
            _refuse_other_roots(self, "broadcast_training_state_", root)
        params = model.parameters()
        arrays = list(params.values())
        mine = {"buffers": {k: to_host(a) for k, a in model.buffers().items()}}
        if optimizer is not None:
            mine["optimizer"] = {"t": optimizer.t, "lr": optimizer.lr,
                                 "slots": {n: list(st) for n, st in optimizer.state.items()}}
        told = self.mpi.bcast(mine if self.rank == root else None, root=root)
        model.load_buffers(told["buffers"])
        if optimizer is not None:
            meta = told["optimizer"]
            optimizer.t, optimizer.lr = meta["t"], meta["lr"]
            optimizer.state = {name: {s: _slot(optimizer.state.get(name, {}).get(s), params[name], model.backend)
                                      for s in slots} for name, slots in meta["slots"].items()}
            arrays += [a for st in optimizer.state.values() for a in st.values()]
        self.broadcast_(arrays, root)

    def _groups(self, arrays, what, check, same=False, agree=True) -> tuple:
        """``([(backend, plan, arrays)] per (device, dtype), check())``, each plan allocated once and
        reused. Every rank learns, in one small all-reduce before any array is sent, whether any rank
        refused its call (a closed communicator, an array that is not a writable float array, what
        ``check`` refuses) or passes other dtypes and shapes (``same``: or another ``check()``, a
        broadcast's root): then every rank raises the same error.
        Asked on every call, not only for a layout new to this rank: ranks whose plans for two layouts
        are both made would otherwise sum unlike buffers, and a rank that found its call refused would
        leave the others waiting in the collective."""
        error, groups, keys, checked = None, {}, [], None
        try:
            self._open()
            for a in _writable_float_arrays(arrays):
                groups.setdefault(backend_of(a), []).append(a)
            self.transport.refuse_other_devices(arrays)
            checked = check()
            keys = [(backend.device, backend.dtype.name, tuple(tuple(a.shape) for a in group))
                    for backend, group in groups.items()]
            for (backend, group), key in zip(groups.items(), keys):  # a buffer beyond one rank's memory: agreed
                if key not in self._plans:
                    with backend.activate():
                        self._plans[key] = FlatBuckets([a.shape for a in group], backend.dtype, backend.xp,
                                                       self.bucket_bytes)
        except GpubpError as exc:
            if not agree:
                raise
            error = exc
        if agree:
            layout = [key[1:] for key in keys]  # not devices: ranks use different GPUs
            told = repr((layout, checked) if same else layout)
            token = int.from_bytes(hashlib.blake2b(told.encode(), digest_size=7).digest(), "little")
            if not agree_on_call(self, f"the call of {what}", error, token):
                refuse_other_layouts(self.mpi, layout)
                _refuse_other_roots(self, what, checked)  # the layouts agree: the roots differ
        return [(backend, self._plans[key], group) for (backend, group), key in zip(groups.items(), keys)], checked


def _refuse_other_roots(comm, what, root) -> None:
    """Refuse, on every rank alike, a broadcast whose ranks name other roots (each rank that names
    itself would keep its own values, without a word)."""
    roots = comm.mpi.allgather(root)
    r = next((r for r, theirs in enumerate(roots) if theirs != roots[0]), None)
    if r is not None:
        raise MismatchError(f"rank {r} of {comm.size} passes root={roots[r]} to {what}, rank 0 root={roots[0]}; "
                            f"every rank must name the same root", r, ["root"])


def _writable_float_arrays(arrays):
    """``arrays``, refused unless a list or tuple of writable float NumPy/CuPy arrays (a
    collective writes them in place), naming the position of the first that is not."""
    if not isinstance(arrays, (list, tuple)):
        hint = "list(d.values()) for a dict d of arrays (model.parameters())" if isinstance(arrays, Mapping) else \
            "[x] for one array x" if hasattr(arrays, "shape") else "a list of them"
        raise InvalidValueError(f"collectives take a list of arrays, got {type(arrays).__name__}; pass {hint}")
    for i, a in enumerate(arrays):
        if not (isinstance(a, np.ndarray) or is_cupy_array(a)) or a.dtype.kind != "f":
            raise DTypeError(f"collectives take float NumPy/CuPy arrays, got {type(a).__name__} "
                             f"of {getattr(a, 'dtype', None)} at position {i}")
        if isinstance(a, np.ma.MaskedArray):  # a[...] = sums would unmask every entry, the masked ones summed
            raise InvalidValueError(f"collectives sum every entry, but the array at position {i} is a masked array, "
                                    f"whose mask they would drop; pass its values with masked entries as you mean "
                                    f"them, e.g. x.filled(0)")
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            raise InvalidValueError(f"collectives write the arrays in place, but the array at position {i} "
                                    f"is read-only; pass a writable copy (x.copy())")
    return arrays


def _checked_scale(scale, arrays):
    """``scale`` (None: none) as a finite float, refused beyond the range of an array's dtype (1e40 for
    float32: every product inf)."""
    if scale is None:
        return None
    scale = _checks.number("allreduce_sum_: scale", scale)
    for i, a in enumerate(arrays):
        if abs(scale) > float(np.finfo(a.dtype).max):
            raise InvalidValueError(f"allreduce_sum_: scale must be within the range of the arrays' dtype, got "
                                    f"{scale:g}, beyond {a.dtype.name}'s +-{float(np.finfo(a.dtype).max):.3g} "
                                    f"(the array at position {i}): every sum would be inf")
    return scale


def check_model(what, model, optimizer=None, optional=False) -> None:
    """Refuse, before any collective, a ``model`` that is not a gpubp model (its parameters, gradients,
    buffers and backend) or an ``optimizer`` that is not a gpubp optimizer (its t, lr and state);
    ``optional``: None is fine for either."""
    if not (optional and model is None) and (not hasattr(model, "backend") or not all(
            callable(getattr(model, m, None)) for m in ("parameters", "gradients", "buffers"))):
        raise InvalidValueError(f"{what}: model must be a gpubp model (gpubp.Sequential, e.g. gpubp.mlp(...)), "
                                f"got {model!r:.80}")
    if optimizer is not None and not all(hasattr(optimizer, a) for a in ("t", "lr", "state")):
        raise InvalidValueError(f"{what}: optimizer must be a gpubp optimizer (gpubp.optim.SGD, Adam, ...), "
                                f"got {optimizer!r:.80}")


def _slot(arr, param, backend):
    """An optimizer slot for ``param`` on ``backend``: ``arr`` when it fits, else zeros (overwritten by the broadcast)."""
    if arr is not None and backend.is_own(arr) and arr.dtype == backend.dtype and arr.shape == param.shape:
        return arr
    return backend.zeros(param.shape)
