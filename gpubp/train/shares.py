"""A data-parallel step's shares (``nn/share.py``): this rank's share of the global batch told to
the layers that take one (Dropout, BatchNorm) for the step, their sums over the ranks counted, an
idle step for a rank that holds no sample of a step, and the rest of a step's sums joined by a
rank that failed inside it, so that no other rank is left waiting in one.
"""
from __future__ import annotations

import contextlib
import dataclasses

from ..errors import InvalidValueError


def sharing(model):
    """The layers whose step depends on the whole global batch (``nn/share.py``: Dropout, BatchNorm),
    each refused unless it has the idle methods a rank holding no sample of a step calls: asked
    before any sum of the step, alike on every rank (was: an AttributeError at the first step
    leaving a rank without samples, or a hang where the layer's forward sums over the ranks)."""
    layers = [(i, layer) for i, layer in enumerate(model.layers) if getattr(type(layer), "takes_share", False) is True]
    for i, layer in layers:
        missing = [name for name in ("idle_forward", "idle_backward") if not callable(getattr(layer, name, None))]
        if missing:
            raise InvalidValueError(f"layer {i} {type(layer).__name__} says takes_share = True but has no callable "
                                    f"{', '.join(missing)}, which a data-parallel rank holding no sample of a step "
                                    f"calls to take its part in the step's sums over the ranks (nn/share.py): "
                                    f"define them, or leave takes_share out")
    return [layer for _, layer in layers]


@contextlib.contextmanager
def shared(model, share):
    """``share`` (``BatchShare``: this rank's share of the global batch) told to the layers for the
    block, the step's forward and backward; None again after it, however it ends (a probe or a
    plan's dry run outside it sums nothing with the other ranks). Yields those layers."""
    layers = sharing(model) if share is not None else []  # one process: nothing to tell
    for layer in layers:
        layer.share = share
    try:
        yield layers
    finally:
        for layer in layers:
            layer.share = None


class Sums:
    """A step's sums over the ranks (``comm.allreduce_sum_alike_``, the layers' ``share.sum_``), counted, so
    that a rank failing inside the step knows how many it joined (``complete``)."""

    def __init__(self, comm):
        self.comm, self.done = comm, 0

    def __call__(self, arrays):
        self.comm.allreduce_sum_alike_(arrays)
        self.done += 1


def complete(model, share):
    """This rank failed inside a step's forward or backward after ``share.sum_.done`` of its layers'
    sums over the ranks: it joins the rest with an idle step's zeros (the first ``done`` skipped), so
    the other ranks, which go on to the step's end, are not left waiting in a sum it never joins
    (or matched with its guard's); the step's guard then stops every rank alike, the epoch undone."""
    if share is None or not _joinable(model):
        return
    sums, skip = share.sum_, [share.sum_.done]

    def rest(arrays):
        if skip[0]:
            skip[0] -= 1
        else:
            sums.comm.allreduce_sum_alike_(arrays)
    try:
        idle(model, dataclasses.replace(share, sum_=rest))
    except Exception as exc:  # the other ranks would wait in those sums for ever: every rank is ended
        sums.comm.abort(f"a step failed here after {sums.done} of its layers' sums over the ranks, and joining "
                        f"the rest failed too ({type(exc).__name__}: {exc}), so the other ranks, waiting in them, "
                        f"could not be told")


def _joinable(model) -> bool:
    """Whether the model's layers can take an idle step: else ``sharing`` refused them alike on every
    rank before any sum over the ranks, so there is nothing to join."""
    try:
        sharing(model)
    except InvalidValueError:
        return False
    return True


def idle(model, share):
    """A step whose global batch this rank holds no sample of: the layers take their part in it all
    the same (Dropout's draw, BatchNorm's sums with the other ranks), forward in layer order and
    backward in reverse, as the ranks that hold samples do."""
    with shared(model, share) as layers:
        for layer in layers:
            layer.idle_forward()
        for layer in reversed(layers):
            layer.idle_backward()
