"""What fit, evaluate and predict are given, checked before any work: the model, data on
its device (finite, of the model's width, targets fit for the loss), checkpointing (callbacks: callbacks.py)."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np

from .. import _checks
from ..checkpoint import metadata_json, target
from ..checkpoint.archive import user_path
from ..checkpoint.claim import Claim
from .resume import refuse_overwrite, refuse_state_keys
from .root_only import on_root
from ..errors import DTypeError, GpubpError, GpubpWarning, InvalidValueError, ShapeError
from ..nn import Activation, Identity, Sigmoid
from ..losses import BinaryCrossEntropy, SoftmaxCrossEntropy


def _prepare(model, loss, X, y, what, names=("X", "y")):
    """(X, y) on the model's device, checked: shapes, NaN/Inf, and every target once
    against the model's output (labels in range). Errors name ``what`` and ``names``."""
    X = _features(model, X, what, names[0])
    y = _as_array(y, what, names[1])
    labels = isinstance(loss, SoftmaxCrossEntropy) and y.ndim == 1  # integer labels stay integers
    if labels and y.dtype.kind in "USO" and not all(isinstance(v, (int, float)) for v in y.tolist()[:1000]):
        raise DTypeError(f"{what}: {names[1]} holds text labels ({y.dtype}, e.g. {y.tolist()[0]!r:.40}), but "
                         f"softmax_cross_entropy takes class indices 0..C-1: classes, {names[1]} = "
                         f"np.unique({names[1]}, return_inverse=True) makes them (classes[i] is class i's label)")
    if labels and y.dtype.kind == "f":  # named as the user gave it, before any conversion
        raise DTypeError(f"{what}: {names[1]} holds {y.dtype} values, but 1-d targets of softmax_cross_entropy "
                         f"are integer class labels 0..C-1: convert them ({names[1]}.astype(int)) or give "
                         f"one-hot targets of shape (N, C)")
    y = _array(model.backend, y, what, names[1], dtype=None if labels else model.backend.dtype)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        found = "a single number (0-d)" if y.ndim == 0 else f"{y.shape[0]} (shape {tuple(y.shape)})"
        raise ShapeError(f"{what}: {names[0]} has {X.shape[0]} samples but {names[1]} has {found}; "
                         f"give one target per sample")
    model.backend.check_finite(y, f"{what}: {names[1]}")
    with np.errstate(all="ignore"):  # an output or loss beyond the float range is refused, not warned of
        out = _probe(model, X, what, names[0])
    _fit_targets(loss, out, y, what, names[1])
    return X, y


def _fit_targets(loss, out, y, what, name):
    """Refuse targets ``y`` that do not fit the model's output ``out`` (one sample of it) for ``loss``:
    shapes, dtypes, and every value (labels within the classes: one device sync)."""
    labels = isinstance(loss, SoftmaxCrossEntropy) and y.ndim == 1
    if not labels and tuple(y.shape[1:]) != tuple(out.shape[1:]):
        column = isinstance(loss, SoftmaxCrossEntropy) and tuple(y.shape[1:]) == (1,)  # labels as a column
        raise ShapeError(f"{what}: {name} has shape {tuple(y.shape)} but the model gives "
                         f"{tuple(out.shape[1:])} per sample; {name} must have shape "
                         f"{(y.shape[0], *out.shape[1:])}"
                         + (f", or be class labels of shape ({y.shape[0]},): {name}.ravel()" if column else ""))
    try:  # the loss's own checks of shapes and dtypes, on the first sample (its values are checked below)
        with loss.targets_checked(), np.errstate(all="ignore"):
            loss.forward(out, y[:1])
    except (ShapeError, DTypeError) as exc:
        raise type(exc)(f"{what}: the model's output, {tuple(out.shape[1:])} per sample, and {name} do not "
                        f"fit {type(loss).__name__}: {exc}") from None
    if isinstance(loss, SoftmaxCrossEntropy) and out.shape[1] < 2:
        raise ShapeError(f"{what}: softmax_cross_entropy needs one output per class (2 or more), but the model "
                         f"gives {out.shape[1]} per sample: the softmax of one output is always 1, so the loss "
                         f"is 0 and nothing is learned; use loss='bce' for one yes/no output")
    try:  # every value (labels within the classes), named as the user's array
        loss.check_targets(out, y)
    except (ShapeError, DTypeError, InvalidValueError) as exc:
        raise type(exc)(f"{what}: {name}: {exc}") from None


class CheckedTargets:
    """The targets fit checked against the model's outputs before training, which every batch then
    trusts (``Loss.targets_checked``): checked again, all of them, once a callback has changed the
    model's layers (``check``, before each step and each validation), since the outputs may have
    changed with them (a last Dense of fewer classes: a label beyond them was a row of zeros)."""

    def __init__(self, model, loss, data):
        self.model, self.loss, self.data, self.layers = model, loss, data, list(model.layers)

    def check(self):
        """Nothing while the layers are those last checked (one list comparison); else each
        ``(X, y, names)`` of ``data`` through the model in eval (a probe) and its targets checked."""
        if self.model.layers == self.layers:
            return
        for X, y, names in self.data:
            with np.errstate(all="ignore"):
                out = _probe(self.model, X, "fit", names[0])
            try:
                _fit_targets(self.loss, out, y, "fit", names[1])
            except (ShapeError, DTypeError, InvalidValueError) as exc:
                said = str(exc) if str(exc).startswith("fit: ") else f"fit: {names[1]}: {exc}"
                raise type(exc)(f"{said} (a callback changed the model's layers: it now gives "
                                f"{tuple(out.shape[1:])} per sample)") from None
        self.layers = list(self.model.layers)


def _warn_sigmoid_twice(model, loss, what):
    """BCE takes logits and applies the sigmoid itself: after a final Sigmoid layer it is applied
    twice (the outputs squashed into [0.5, 0.73], the gradients small), silently."""
    if isinstance(loss, BinaryCrossEntropy) and model.layers and isinstance(model.layers[-1], Sigmoid):
        warnings.warn(f"{what}: the model ends in a Sigmoid layer and bce applies the sigmoid itself (it takes "
                      f"logits), so it is applied twice; remove the last Sigmoid", GpubpWarning, stacklevel=3)


def _probe(model, X, what, name):
    """The model's output for the first sample of ``X``, run in eval with the second where there is
    one (a layer normalising by the batch's statistics, BatchNorm without running statistics,
    refuses one sample); an input the model refuses is named as the user's array, with its whole
    shape (not as a layer's probe input)."""
    with _mode(model, False):  # a probe: no Dropout step, no BatchNorm statistics; shapes as eval takes them
        _walk_shapes(model, X.shape, what, name)
        try:
            return model.forward(X[:2])[:1]
        except (ShapeError, DTypeError) as exc:
            raise type(exc)(f"{what}: {name} of shape {tuple(X.shape)} does not fit the model: {exc}") from None


def _walk_shapes(model, shape, what, name):
    """``shape`` through the model's layers (``Sequential.output_shape``): the first layer that refuses
    it is named with its index and the shapes that led to it, all of ``name`` (a Dense of the wrong
    width after Flatten: how many values the images became), not the probe's two samples."""
    try:
        model.output_shape(tuple(shape))
    except ShapeError as exc:
        raise ShapeError(f"{what}: {name} of shape {tuple(shape)} does not fit the model: {exc}") from None


def _one_sample_batch(model, X, batch_size):
    """A batch of one sample, when the epoch has one, run through the model in training now (its
    buffers put back), so a layer refusing it (BatchNorm over one value per channel) stops fit
    before training, not at the end of the first epoch. (With a communicator the global batch is
    what counts: a rank's share of one sample is normalised by the global batch's statistics.)"""
    if 1 not in {batch_size, X.shape[0] % batch_size}:
        return
    saved = {k: v.copy() for k, v in model.buffers().items()}
    try:
        with _mode(model, True):
            model.forward(X[:1])
    except ShapeError as exc:
        when = "at every step" if batch_size == 1 else "at the end of every epoch"
        raise ShapeError(f"fit: {X.shape[0]} sample(s) in batches of {batch_size} make a batch of one sample "
                         f"{when}, which the model refuses in training ({exc}); choose another batch_size") from None
    finally:
        model.load_buffers(saved)


def refuse_regression_targets(y, what, name="y"):
    """Refuse float target rows that are not distributions (summing to 1) under the default loss,
    softmax_cross_entropy, which would take them as class weights: a regression's targets given to
    fit or evaluate without loss='mse' trained or scored a classifier, without a word. The first
    such row is named (a row of zeros: one without a class)."""
    if y.ndim < 2 or y.dtype.kind != "f":
        return
    sums = y.reshape(y.shape[0], -1).sum(axis=1)
    off = abs(sums - 1) > 1e-3
    if not bool(off.any()):
        return
    first = int(off.argmax())
    row, low, high = float(sums[first]), float(sums.min()), float(sums.max())
    raise InvalidValueError(f"{what}: {name}'s rows are not one-hot or probabilities (row {first} sums to {row:.4g}"
                            + (", all zeros: no class" if row == 0 else "") + f"; they sum to {low:.4g} .. "
                            f"{high:.4g}), so the default loss, softmax_cross_entropy, would take them as class "
                            f"weights: give the model's loss, e.g. loss='mse' for a regression, 'bce' for yes/no "
                            f"outputs (or loss='softmax_cross_entropy' for weighted targets)")


def unlabelled_rows(model, loss, y, what, name="y", warn=True):
    """Softmax cross-entropy target rows of all zeros: weight 0 (they add nothing to the loss) and no
    class, so the accuracy leaves them out (``evaluation.scored``) instead of scoring them as class 0;
    warned of by row (``warn``), refused when every row is one (nothing to train or score). One sync."""
    if not (isinstance(loss, SoftmaxCrossEntropy) and y.ndim == 2 and y.shape[0]):
        return
    empty = y.max(axis=1) <= 0  # targets are >= 0 (checked): a row of zeros
    count, n = int(empty.sum()), y.shape[0]
    if not count:
        return
    rows = ", ".join(str(int(i)) for i in model.backend.xp.flatnonzero(empty)[:5]) + (", ..." if count > 5 else "")
    if count == n:
        raise InvalidValueError(f"{what}: every row of {name} is all zeros, so no sample has a class: nothing to "
                                f"train or score with softmax_cross_entropy (give each sample its one-hot row)")
    if warn:
        warnings.warn(f"{what}: {name} row(s) {rows} ({count} of {n}) are all zeros: softmax_cross_entropy gives them "
                      f"weight 0 and they have no class, so the accuracy leaves them out (it counts the other "
                      f"{n - count}); give each sample its one-hot row, or drop those rows", GpubpWarning,
                      stacklevel=3)


def _validation(model, loss, data):
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        kind = f"a {len(data)}-item {type(data).__name__}" if isinstance(data, (tuple, list)) \
            else f"a {type(data).__name__}"
        raise InvalidValueError(f"fit: validation_data must be a pair (X_val, y_val), got {kind}")
    return _prepare(model, loss, *data, "fit", names=("validation_data X", "validation_data y"))


def _features(model, X, what, name):
    """X as a finite, non-empty float array of samples (rows of features, or images (N, C, H, W))
    on the model's device, of the model's width where its first layer says one."""
    X = _array(model.backend, X, what, name, dtype=model.backend.dtype)
    if X.ndim < 2:
        raise ShapeError(f"{what}: {name} must hold samples along its first axis, as (samples, features) "
                         f"or (samples, channels, height, width); got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ShapeError(f"{what}: no samples ({name} has shape {tuple(X.shape)})")
    width = _input_width(model)
    if width is not None and X.ndim == 2 and X.shape[1] != width:
        raise ShapeError(f"{what}: {name} has shape {tuple(X.shape)}, {X.shape[1]} features per sample, "
                         f"but the model's first layer {model.layers[0]!r} expects {width}")
    return model.backend.check_finite(X, f"{what}: {name}")


def _array(backend, a, what, name, dtype=None):
    """``a`` on ``backend`` (``Backend.asarray``: masked values, ragged lists and values beyond
    the model's float range refused), its refusals named as ``what: name``."""
    a = _as_array(a, what, name)
    try:
        return backend.asarray(a, dtype=dtype if a.dtype.kind in "iub" else None)
    except GpubpError as exc:
        raise type(exc)(f"{what}: {name}: {exc}") from None


def _as_array(a, what, name):
    """``a`` itself when it is an array of a NumPy dtype (NumPy's, CuPy's or a masked array, which
    ``Backend.asarray`` checks), else read by NumPy (a list, a tensor, an array-like)."""
    if isinstance(getattr(a, "dtype", None), np.dtype):
        return a
    try:
        return np.asarray(a)
    except ValueError as exc:  # ragged lists
        raise ShapeError(f"{what}: {name} is not a rectangular array ({exc})") from None
    except (TypeError, RuntimeError) as exc:  # a tensor on a GPU (TypeError), one that requires grad (RuntimeError)
        raise DTypeError(f"{what}: {name} (a {type(a).__name__}) cannot be read as an array ({exc})") from None


def _input_width(model):
    """The input width the model's first Dense layer needs, when only activations precede it."""
    for layer in model.layers:
        if hasattr(layer, "n_in"):
            return layer.n_in
        if not isinstance(layer, (Activation, Identity)):
            return None
    return None


COMM_METHODS = ("guard", "check_consistent", "broadcast_training_state_", "local_batches", "first_of_share", "grad_scale",
                "allreduce_gradients_alike_", "allreduce_scalars")


def _check_comm(comm):
    if comm is not None and not (hasattr(comm, "is_root") and all(callable(getattr(comm, m, None))
                                                                  for m in COMM_METHODS)):
        raise InvalidValueError(f"fit: comm must be a communicator such as gpubp.distributed.mpi.world(), or None; "
                                f"got {comm!r:.80}")
    if comm is not None and callable(getattr(comm, "ready", None)):
        comm.ready()  # MPI running and the communicator open, asked before fit's first collective


def _checkpoint_extra(extra):
    """``checkpoint_extra`` checked now, not at the first checkpoint after an epoch of training: a
    dict of JSON-able values whose keys are strings other than the training state's own and ``writer``."""
    if extra is None:
        return None
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise InvalidValueError(f"fit: checkpoint_extra must be a dict with string keys, got {extra!r:.80}")
    refuse_state_keys(extra)
    if "writer" in extra:  # fit's own mark of the run that wrote a checkpoint (checkpoint.claim)
        raise InvalidValueError("fit: checkpoint_extra may not use the key 'writer': fit marks its checkpoints with "
                                "it (the run that wrote them); rename it")
    try:
        metadata_json(extra)  # the checkpoint writer's own rules, applied before training
    except GpubpError as exc:
        raise InvalidValueError(f"fit: {exc}") from None
    return extra


def _checkpointing(path, every, resume_from=None, overwrite=False, comm=None):
    """(``checkpoint_every``, the Claim of ``checkpoint_path``): both or neither given; the path is
    checked now, before any training, as the checkpoint writer checks it (a writable folder; no
    folder, read-only file or file that is not a gpubp checkpoint there), and a checkpoint of
    another run there is kept unless ``overwrite`` (``refuse_overwrite``); then what it holds is
    claimed (``path`` may be a Claim already). With ``comm`` the path is rank 0's, the one rank that
    writes it: checked and claimed there alone, its verdict every rank's (``root_only``); the other
    ranks get no Claim."""
    if path is None:
        if every is not None:
            raise InvalidValueError(f"fit: checkpoint_every={every!r} without checkpoint_path; nothing would "
                                    f"be written (give checkpoint_path too)")
        return None, None
    if every is None:
        raise InvalidValueError("fit: checkpoint_path needs checkpoint_every, a whole number >= 1 "
                                "(write every N epochs), got None")
    every = _checks.integer("fit: checkpoint_every", every, 1)
    return every, on_root(comm, "checking fit's arguments", lambda: _claimed(path, resume_from, overwrite))


def _claimed(path, resume_from, overwrite):
    """The Claim of the checkpoint path ``path`` (or ``path`` itself, a Claim already), checked first."""
    claim = path if isinstance(path, Claim) else None
    path = claim.path if claim else user_path(path)
    try:
        target(path)  # the checkpoint writer's own refusals (a folder, someone's data file), before training
    except GpubpError as exc:
        raise InvalidValueError(f"fit: {exc}") from None
    if not overwrite:
        refuse_overwrite(path, resume_from, "fit: checkpoint_path", "resume_from='{path}'", "overwrite=True")
    return claim or Claim(path)


def _mode(model, training):
    """The model in training or eval mode for a block, each layer's mode put back after, layer by layer
    (``Sequential.mode``: a callback may insert, replace or remove layers inside). A model without
    modes runs as it is."""
    return model.mode(training) if hasattr(model, "mode") else contextlib.nullcontext()
