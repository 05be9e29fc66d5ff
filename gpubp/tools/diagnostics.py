"""Per-layer gradient diagnostics: how large is the error signal at each depth?

Backprop multiplies the error signal by each layer's local derivative on the way
down: for a sigmoid net ``delta_l = (delta_{l+1} W_{l+1}^T) * s_l (1 - s_l)`` and
``s (1 - s) <= 1/4``, so after ``L`` sigmoid layers the signal can shrink like
``4^-L`` (the vanishing gradient). ReLU's derivative is 1 where it is active.

``GradientRecorder`` is a fit() callback that records, per epoch, the mean over
batches of ``||dW||`` for every Dense layer and of ``||dY||``, the gradient each
layer's backward receives (for a Dense layer that is its delta). It watches the
backward as an observer on ``model.observers`` (the hook of :mod:`gpubp.network`),
so neither the layers nor their instances are touched.
``vanishing_experiment`` compares a deep sigmoid net with the same net in ReLU.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager

from .. import _checks
from ..backend import get_backend
from ..datasets import load_digits
from ..errors import DTypeError, GpubpError, InvalidValueError, ShapeError, StateError
from ..initializers import addressable
from ..nn import Dense
from ..losses import SoftmaxCrossEntropy, get_loss
from ..network import Sequential, mlp
from ..train import fit


class GradientRecorder:
    """fit() callback recording per-layer gradient norms, averaged per epoch.

    After training: ``dW_norms[e][k]`` is the mean ``||dW||`` of the k-th Dense layer
    (``dense[k]`` is its index in ``model.layers``) in epoch ``e``; ``delta_norms[e][i]``
    the mean ``||dY||`` received by layer ``i`` (NaN where it never ran a backward). ``names`` and
    ``dense`` are the last epoch's layers; ``rows(e)`` names epoch ``e``'s own (a callback may change them).
    Norms are Frobenius norms, summed on the device and read once per epoch.
    """

    def __init__(self):
        self.dW_norms, self.delta_norms = [], []
        self.names, self.dense = [], []
        self._model, self._layouts = None, []  # each recorded epoch's (names, dense)

    # -- fit() callback protocol ------------------------------------------------------
    def on_epoch_begin(self, epoch, model):
        self.attach(model)

    def on_batch_end(self, step, model, loss_value):
        self._watching(model, "on_batch_end")
        self._follow(model)
        xp = model.backend.xp
        for k, i in enumerate(self.dense):
            self._dW_sum[k] = self._dW_sum[k] + xp.linalg.norm(model.layers[i].grads["W"])
        for i, norm in self._batch.items():
            self._delta_sum[i] = self._delta_sum[i] + norm
            self._delta_count[i] += 1
        self._batch.clear()
        self._batches += 1

    def on_epoch_end(self, epoch, model, history=None):
        self._watching(model, "on_epoch_end")
        n = max(self._batches, 1)
        self.dW_norms.append([float(s) / n for s in self._dW_sum])
        self.delta_norms.append([float(s) / c if c else float("nan")
                                 for s, c in zip(self._delta_sum, self._delta_count)])
        self._layouts.append((self.names, self.dense))
        self.detach()

    # -- watching a model ---------------------------------------------------------------
    def attach(self, model):
        """Start an epoch on ``model``: zero the sums and join ``model.observers``."""
        _checks.instance("GradientRecorder.attach: model", model, Sequential)
        self.detach()
        self._model, self._batch, self._batches = model, {}, 0
        self._layout(model)
        model.observers.append(self)

    def _layout(self, model):
        """The sums, zeroed, for ``model``'s layers now."""
        self._layers, n_layers = list(model.layers), len(model.layers)
        self.names = [type(layer).__name__ for layer in model.layers]
        self.dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
        self._dW_sum = [0.0] * len(self.dense)
        self._delta_sum, self._delta_count = [0.0] * n_layers, [0] * n_layers

    def _follow(self, model, refuse=True) -> bool:
        """Whether the sums are of ``model``'s layers: taken again when a callback changed them before the
        epoch's first batch (one after the recorder in fit's list); a change within the epoch refused (its
        sums would mix other layers' norms), or with ``refuse=False`` (an observer event: a recorder
        attached by hand, watching another fit) False."""
        if model.layers == self._layers:
            return True
        if (self._batches or self._batch) and not refuse:
            return False
        if self._batches or self._batch:
            raise StateError("GradientRecorder: the model's layers changed during an epoch (by a callback?), so its "
                             "per-layer norms would mix layers; change them in on_epoch_begin, or record another epoch")
        self._layout(model)
        return True

    def _watching(self, model, event):
        """Refuse an event for a model this recorder is not attached to (its layer indices
        would read another model's gradients)."""
        if model is not self._model or self._model is None or not any(o is self for o in model.observers):
            raise StateError(f"GradientRecorder.{event}: the recorder is not attached to this model (or was taken "
                             f"off its observers, as fit does when it ends); call attach(model) (or "
                             f"on_epoch_begin, as fit does) first")

    def detach(self):
        """Leave the observers of the model attached to (if any)."""
        if self._model is None:
            return
        observers = self._model.observers
        observers[:] = [o for o in observers if o is not self]
        self._model = None

    def backward(self, model, i, layer, dY, dX):
        """Observer event: layer ``i`` received ``dY`` (its norm stays on the device)."""
        if model is self._model and self._follow(model, refuse=False):  # else on_batch_end refuses it
            try:
                self._delta_count[i]  # noqa: B018  (a layer index of this model, else refused here, not at the sum)
                norm = model.backend.xp.linalg.norm(dY)
            except (TypeError, ValueError, IndexError) as exc:
                raise InvalidValueError(f"GradientRecorder.backward: takes (model, i, layer, dY, dX) as a model's "
                                        f"observers are told, i a layer index < {len(self._delta_count)} and dY an "
                                        f"array; got i={i!r:.20}, dY {type(dY).__name__} ({exc})") from None
            self._batch[i] = norm

    @contextmanager
    def epoch(self, model):
        """Record one "epoch" by hand: ``with rec.epoch(model): <forward/backward>; rec.on_batch_end``."""
        self.attach(model)
        try:
            yield self
        finally:
            self.on_epoch_end(len(self.dW_norms), model)

    def rows(self, epoch=-1) -> list:
        """Rows ``(layer index, layer name, ||dW|| or None, ||dY||)`` for one epoch."""
        if not self.delta_norms:
            raise GpubpError("GradientRecorder has recorded no epoch yet")
        epoch = checked_epoch("GradientRecorder", self, epoch)
        names, dense = self._layouts[epoch] if len(self._layouts) == len(self.dW_norms) else (self.names, self.dense)
        dW = dict(zip(dense, self.dW_norms[epoch]))
        return [(i, name, dW.get(i), self.delta_norms[epoch][i]) for i, name in enumerate(names)]

    def table(self, epoch=-1) -> str:
        """``rows(epoch)`` as a printed table, the output layer marked."""
        rows = self.rows(epoch)
        lines = [f"{'layer':>5}  {'':<10}{'||dW||':>12}{'||dY||':>12}"]
        for i, name, dW, dY in rows:
            mark = "  (output)" if i == len(rows) - 1 else ""
            lines.append(f"{i:>5}  {name:<10}{'-' if dW is None else f'{dW:.3e}':>12}{dY:>12.3e}{mark}")
        return "\n".join(lines)


def record_gradients(model, X, T, loss) -> GradientRecorder:
    """One forward/backward of ``model`` on ``(X, T)`` under ``loss`` (a Loss or its name), in its
    mode, recorded as a single epoch: on a copy, so the model's BatchNorm statistics, gradients (a
    callback's step uses them) and caches stay as they were."""
    _checks.instance("record_gradients: model", model, Sequential)
    model = _twin(model)
    rec, loss, backend = GradientRecorder(), get_loss(loss), model.backend
    X, T = backend.asarray(X), backend.asarray(T)
    labels = isinstance(loss, SoftmaxCrossEntropy) and T.ndim == 1  # class labels stay integers, as fit keeps them
    X, T = (backend.asarray(a, backend.dtype) if a.dtype.kind in "iub" and not keep else a
            for a, keep in ((X, False), (T, labels)))  # uint8 pixels, 0/1 targets: as fit takes them
    backend.check_finite(X, "record_gradients: the input X")
    backend.check_finite(T, "record_gradients: the targets T")
    with rec.epoch(model):
        try:
            loss.forward(model.forward(X), T)
        except (ShapeError, DTypeError, InvalidValueError) as exc:
            raise type(exc)(f"record_gradients: X of shape {tuple(X.shape)} and T of shape {tuple(T.shape)} do not "
                            f"fit the model and the {type(loss).__name__} loss: {exc}") from None
        model.zero_grad()
        model.backward(loss.backward())
        rec.on_batch_end(0, model, None)
    return rec


def _twin(model):
    """A copy of ``model`` on its backend, without its observers (a recorder fit attached)."""
    try:
        return copy.deepcopy(model, {id(model.backend): model.backend, id(model.observers): []}).flatten_()
    except Exception as exc:  # a user's layer holding a lock, a file, a generator...
        raise InvalidValueError(f"record_gradients works on a copy, and {model!r:.80} cannot be copied "
                                f"({type(exc).__name__}: {exc}); give its layers state that copy.deepcopy "
                                f"can copy") from exc


def vanishing_experiment(depth=10, width=32, seed=0, backend=None, dtype=None,
                         n_samples=256, epochs=0, lr=0.01):
    """Deep sigmoid net vs the same net with ReLU on the digits data.

    Each net is ``depth`` hidden ``Dense(width) -> activation`` layers and a Dense output,
    built like ``gpubp train``'s: Xavier init for sigmoid, He init for ReLU (each
    activation's own standard init, so the small sigmoid gradient is no init artefact).

    Records one forward/backward at initialisation (and, with ``epochs > 0``, the
    per-epoch norms of a short fit() with Adam). Returns
    ``{"sigmoid": GradientRecorder, "relu": GradientRecorder, "ratio": {...}}`` where
    ``ratio[act]`` = first-layer ``||dW||`` / last-layer ``||dW||`` at initialisation.
    """
    depth = _checks.integer("vanishing_experiment: depth", depth, minimum=1)
    width = _checks.integer("vanishing_experiment: width", width, minimum=1)
    addressable("vanishing_experiment: the hidden weights", (depth, width, width))
    epochs = _checks.integer("vanishing_experiment: epochs", epochs, minimum=0)
    lr = _checks.number("vanishing_experiment: lr", lr, low=0, low_open=True)
    n_samples = _checks.integer("vanishing_experiment: n_samples", n_samples, minimum=1)
    backend = get_backend(backend, dtype)
    X, y, _, _ = load_digits(seed=seed)
    if n_samples > len(X):
        raise InvalidValueError(f"vanishing_experiment: n_samples must be at most {len(X)} (the digits "
                                f"training set), got {n_samples}")
    X, y = X[:n_samples], y[:n_samples]
    out = {"ratio": {}}
    for act in ("sigmoid", "relu"):
        model = mlp(X.shape[1], [width] * depth, 10, act, backend, seed=seed)
        rec = record_gradients(model, X, y, SoftmaxCrossEntropy())
        if epochs:
            fit(model, X, y, optimizer="adam", lr=lr, epochs=epochs, seed=seed, progress=False,
                callbacks=[rec])
        out[act] = rec
        out["ratio"][act] = _ratio(rec.dW_norms[0][0], rec.dW_norms[0][-1])
    return out


def checked_epoch(who, rec, epoch) -> int:
    """``epoch`` as an index into what ``rec`` recorded (negative counts from the end)."""
    if not isinstance(rec, GradientRecorder):
        raise InvalidValueError(f"{who}: expected a GradientRecorder, got {type(rec).__name__} {rec!r:.60}")
    n = len(rec.dW_norms)
    epoch = _checks.integer(f"{who}: epoch", epoch)
    if not -n <= epoch < n:
        raise InvalidValueError(f"{who} has recorded {n} epoch(s)" + (f" (0 to {n - 1}, or -1 for the last)"
                                if n else "") + f", so epoch {epoch} is not there")
    return epoch


def _ratio(first, last) -> float:
    """first / last; inf when only the last is 0 (a net whose units all died), NaN when both are."""
    if last:
        return first / last
    return math.inf if first else math.nan


def format_table(result, epoch=0) -> str:
    """Side-by-side text table of ``vanishing_experiment`` norms for one epoch."""
    if not (isinstance(result, dict) and isinstance(result.get("sigmoid"), GradientRecorder)
            and isinstance(result.get("relu"), GradientRecorder) and isinstance(result.get("ratio"), dict)
            and {"sigmoid", "relu"} <= set(result["ratio"])):
        raise InvalidValueError(f"format_table takes what vanishing_experiment returns, a dict of 'sigmoid' and 'relu' "
                                f"GradientRecorders and their 'ratio', got {type(result).__name__} {result!r:.60}")
    sig, relu = result["sigmoid"], result["relu"]
    epoch = checked_epoch("format_table", sig, epoch)
    lines = [f"{'Dense layer':>11}  {'sigmoid ||dW||':>15}  {'relu ||dW||':>12}   (1 = nearest the input, as in the plot)"]
    last = len(sig.dense)
    for k in range(last):
        mark = "  output layer" if k + 1 == last else ""
        lines.append(f"{k + 1:>11}  {sig.dW_norms[epoch][k]:>15.3e}  {relu.dW_norms[epoch][k]:>12.3e}{mark}")
    lines.append("first/last layer ||dW||:  sigmoid {sigmoid:.2e}  relu {relu:.2e}".format(**result["ratio"]))
    return "\n".join(lines)

