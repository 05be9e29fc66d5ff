"""The slots an optimizer keeps per parameter (momentum buffers, moving averages; ``OptimizerSlots``,
a base of ``Optimizer``): checked against the model before any parameter changes (their names,
kinds and shapes; no two of parameters, gradients and slots sharing memory), made or moved to the
model's device, flattened for a flat model, and following a hyperparameter that changes them.
"""
from __future__ import annotations

from ..errors import InvalidValueError, ShapeError
from ..network.state import refuse_shared_memory


class OptimizerSlots:
    """``Optimizer``'s slots: ``self._state`` is ``{parameter name: {slot: array}}``, ``self.slots``
    the rule's slot names."""

    def _hyper_changed(self) -> None:
        """The state follows a hyperparameter that changes the rule's slots between steps (SGD's
        momentum set from 0, or to 0; RMSprop's ``centered`` or ``momentum``; Adam's ``amsgrad``): a
        slot the rule no longer keeps is dropped (PyTorch ignores it), one it now keeps starts at
        zeros at the next step (the moments already kept are kept). SGD's new momentum buffer so
        starts at (1 - dampening) g, where PyTorch's starts at g; the same for dampening 0."""
        old, new = getattr(self, "_slot_names", None), tuple(self.slots)
        if old is None or old == new:
            return
        for slots in self._state.values():
            for slot in set(slots) - set(new):
                del slots[slot]
        self._added = (getattr(self, "_added", set()) | set(new) - set(old)) & set(new)
        self._slot_names = new
        self._prepared = None

    def _check_state_names(self, params) -> None:
        """Loaded state for parameters the model lacks, or (after a step) none for some it has, is
        the state of another model: refused before any parameter changes. (State this optimizer
        made itself follows a model whose layers change: new parameters get new slots.)"""
        if not self._state:
            return
        extra = sorted(set(self._state) - set(params))
        missing = sorted(set(params) - set(self._state)) if self.t > 0 else []
        if extra or missing:
            raise ShapeError(f"{type(self).__name__} state is not this model's: "
                             + "; ".join(p for p in (extra and f"it has state for {extra}, which the model lacks",
                                                     missing and f"it has none for the model's {missing}") if p)
                             + "; create a new optimizer for a new model")

    def _flatten_slots(self, names, backend) -> list:
        """Each slot of every parameter in ``names`` moved into one flat array per slot (values
        kept; the state then holds views of it), in that order: the flat slots."""
        xp, flats = backend.xp, []
        size = sum(self._state[name][self.slots[0]].size for name in names) if self.slots else 0
        made = iter(backend.flat_zeros([size] * len(self.slots)))  # together: on the host on huge pages
        for slot in self.slots:
            arrays, flat = [self._state[name][slot] for name in names], next(made)
            if any(a.dtype != flat.dtype for a in arrays):
                flat = xp.concatenate([a.ravel() for a in arrays])  # slots of their own dtype keep it
            elif arrays:
                xp.concatenate([a.ravel() for a in arrays], out=flat)
            start = 0
            for name, a in zip(names, arrays):
                self._state[name][slot] = flat[start:start + a.size].reshape(a.shape)
                start += a.size
            flats.append(flat)
        return flats

    def _check_slots(self, params, grads, backend, replaced=()) -> None:
        """Refuse, before anything changes, slots held for the model's parameters (set by hand,
        ``optimizer.state = ...``, or another model's) that are not exactly this rule's ``slots``,
        not arrays, or of another shape than their parameter; and any two of the parameters,
        gradients and the slots kept as they are that share memory (``refuse_shared_memory``: an
        update reads and writes each name's arrays as its own). The slots of a ``replaced`` layer's
        parameters are not this model's: not checked, made anew."""
        kind = type(self).__name__
        memory = [(what, name, a, backend) for what, arrays in (("parameter", params), ("gradient", grads))
                  for name, a in arrays.items()]
        for name, param in params.items():
            state = self._state.get(name)
            if not state or name in replaced:  # none, or {}: nothing made yet (PyTorch's empty state), made now
                continue
            if not set(state) <= set(self.slots) or set(self.slots) - set(state) - self._added:
                raise InvalidValueError(f"{kind} state {name} has slots {sorted(map(str, state))}, {kind} keeps "
                                        f"{list(self.slots)}; set optimizer.state = {{}} to start afresh")
            for slot, arr in state.items():
                if getattr(arr, "shape", None) is None or getattr(arr, "dtype", None) is None:
                    raise InvalidValueError(f"{kind} state {name}.{slot} is a {type(arr).__name__}, not an array")
                if tuple(arr.shape) != tuple(param.shape):
                    raise ShapeError(f"{kind} state {name}.{slot} has shape {tuple(arr.shape)}, parameter has "
                                     f"{tuple(param.shape)}; create a new optimizer for a new model")
                if backend.is_own(arr) and arr.dtype == backend.dtype:  # kept as it is (others are copied)
                    memory.append((f"{kind} state", f"{name}.{slot}", arr, backend))
        refuse_shared_memory(memory, kind)

    def _slots(self, name, param, backend, fresh=False) -> list:
        """The slots of parameter ``name`` on ``backend`` (``_check_slots`` passed): made (zeros; also
        when ``fresh``) or moved."""
        state = self._state.get(name)
        if state is None or fresh:
            state = self._state[name] = {s: backend.zeros(param.shape) for s in self.slots}
        for slot in self.slots:
            if slot not in state:  # one a hyperparameter change added (``_hyper_changed``)
                state[slot] = backend.zeros(param.shape)
        for slot, arr in state.items():
            if not backend.is_own(arr) or arr.dtype != backend.dtype:
                state[slot] = backend.asarray(arr)  # the model moved: its state follows it
        return [state[s] for s in self.slots]
