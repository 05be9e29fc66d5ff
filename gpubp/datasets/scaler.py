"""``Scaler``: features standardised with the training split's mean and std, ``x' = (x - mean) / std``
(a constant column, or one constant but for rounding, std 1, so it stays finite); ``to_dict`` is what a
checkpoint stores so ``predict`` on raw data is right."""
from __future__ import annotations

import numpy as np

from .._checks import Fixed, unmasked
from ..errors import InvalidValueError, NumericalError, ShapeError

ROUNDING_STEPS = 16  # a column spanning at most this many rounding steps of its floats is constant


class Scaler:
    """Per-feature standardisation fitted on training data: ``x' = (x - mean) / std``. Its mean
    and std are fixed when it is made (a new Scaler for others)."""

    mean, std = Fixed(), Fixed()

    def __init__(self, mean, std):
        # copies (flatten): an array given stays the caller's, neither tied to the Scaler nor made read-only
        self.mean, self.std = _floats_of("Scaler: mean", mean).flatten(), _floats_of("Scaler: std", std).flatten()
        if self.mean.shape != self.std.shape or not self.mean.size:
            raise ShapeError(f"Scaler: {self.mean.size} means but {self.std.size} stds; one of each per feature")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all() and (self.std > 0).all()):
            raise InvalidValueError("Scaler: mean and std must be finite and std > 0 (NaN, Inf or a zero std "
                                    "would turn every input into NaN or Inf)")
        # read-only, as the attributes are fixed: scaler.std[0] = 0 went past the check above
        self.mean.flags.writeable = self.std.flags.writeable = False

    def __reduce__(self):  # a copy or pickle made again through __init__: checked, read-only
        return type(self), (self.mean, self.std)

    def __repr__(self):
        return f"Scaler({self.mean.size} features)"

    @classmethod
    def fit(cls, X) -> "Scaler":
        """The Scaler of ``X``'s columns. A column whose values span at most ``ROUNDING_STEPS`` (16) rounding
        steps of its float type (``np.spacing`` at its largest ``|x|``: float32's for float16/float32 arrays,
        float64's otherwise) is constant, std 1: that spread is rounding, not signal, and dividing by it
        scaled a new value 2.0 of a column [1.0, nextafter(1.0)] to 6e15 (of [1.0, 1.0000001] in float32,
        to 1.7e7)."""
        given = _float_type(X)
        X = _floats_of("Scaler.fit: X", X)
        if X.ndim == 0:
            raise ShapeError(f"Scaler.fit: X needs one row per sample, got a single value {X!r:.60}")
        if len(X) == 0:
            raise ShapeError("Scaler.fit: no samples to take the mean and std of")
        if not X.size:  # was: "Scaler: 0 means but 0 stds"
            raise ShapeError(f"Scaler.fit: X of shape {X.shape} holds no feature per sample")
        X = X.reshape(len(X), -1)
        if not np.isfinite(X).all():
            raise InvalidValueError("Scaler.fit: the features hold NaN/Inf")
        # each column divided by a power of two near its largest |x| (exact): the mean and the squares
        # neither overflow (values up to 1.8e308) nor underflow (subnormal columns); the same numbers otherwise
        unit = np.ldexp(1.0, np.frexp(np.abs(X).max(axis=0))[1] - 1)
        Z = X / unit
        mean, std = Z.mean(axis=0) * unit, Z.std(axis=0) * unit
        # a column of one value: its mean is that value exactly (summing n copies of 0.1 rounds), its std 1,
        # not the rounding's ~1e-17, which would blow a new value 0.2 up to 7e15
        same = (X == X[0]).all(axis=0)
        with np.errstate(over="ignore"):  # a spread beyond float64's range is inf: no rounding
            spread = X.max(axis=0) - X.min(axis=0)
        steps = np.spacing(np.abs(X).max(axis=0).astype(given)).astype(np.float64)
        constant = same | (spread <= ROUNDING_STEPS * steps) | (std == 0)
        return cls(np.where(same, X[0], mean), np.where(constant, 1.0, std))

    def __call__(self, X) -> np.ndarray:
        X = self._checked("Scaler: X", X)
        X2 = X.reshape(len(X), self.mean.size)
        with np.errstate(all="ignore"):  # x - mean may overflow where the result does not: then in halves
            out = self._halves((X2 - self.mean) / self.std, lambda: (X2 / 2 - self.mean / 2) / self.std)
        return self._finite(out.reshape(X.shape), X, "scaled")

    def inverse(self, X) -> np.ndarray:
        """Back to the original units: ``x = x' std + mean`` (a regression's outputs)."""
        X = self._checked("Scaler.inverse: X", X)
        X2 = X.reshape(len(X), self.mean.size)
        with np.errstate(all="ignore"):
            out = self._halves(X2 * self.std + self.mean, lambda: X2 * (self.std / 2) + self.mean / 2)
        return self._finite(out.reshape(X.shape), X, "unscaled")

    @staticmethod
    def _halves(out, half) -> np.ndarray:
        """``out``, its NaN/Inf entries recomputed as twice ``half()`` (the same formula on halved terms,
        exact), which is finite where only an intermediate sum overflowed float64."""
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = (half() * 2)[bad]
        return out

    @staticmethod
    def _finite(out, X, what) -> np.ndarray:
        """``out``, refused when finite values of ``X`` became NaN/Inf (beyond float64's range)."""
        bad = ~np.isfinite(out) & np.isfinite(X)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise NumericalError(f"Scaler: X{list(first)} = {X[first]:.6g} {what} is beyond float64's range "
                                 f"({int(bad.sum())} value(s)); the data is far outside what the Scaler was fitted on")
        return out

    def _checked(self, name, X) -> np.ndarray:
        """``X`` as float64, refused unless each sample holds the fitted number of features."""
        X = _floats_of(name, X)
        if X.ndim < 1 or X.size != len(X) * self.mean.size:
            raise ShapeError(f"Scaler: fitted on {self.mean.size} features per sample, got data of shape {X.shape}")
        return X

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d) -> "Scaler":
        if not isinstance(d, dict) or set(d) != {"mean", "std"}:
            raise InvalidValueError(f"a Scaler is stored as {{'mean': [...], 'std': [...]}}, got {d!r:.80}")
        return cls(d["mean"], d["std"])


def _float_type(values) -> type:
    """The float type whose rounding ``values`` carry: a float16 or float32 array's own, else float64."""
    try:
        dtype = np.dtype(getattr(values, "dtype", np.float64))
    except TypeError:  # a torch dtype, say
        return np.float64
    return dtype.type if dtype.kind == "f" and dtype.itemsize < 8 else np.float64


def _floats_of(name, values) -> np.ndarray:
    """``values`` as a C-ordered float64 array (a Fortran-ordered or strided array reduced as its C-ordered
    copy is, to the last bit); masked values, None, complex and non-numbers refused."""
    unmasked(name, values)
    on_device(name, values)
    try:
        given = np.asarray(values)
        missing = given.dtype == object and given.ndim > 0 and any(v is None for v in given.reshape(-1))  # NumPy: NaN
        floats = None if missing or np.iscomplexobj(given) else np.asarray(given, np.float64, order="C")
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be numbers (an array or lists of them), got {values!r:.60}") from None
    if missing:
        raise InvalidValueError(f"{name} holds None where numbers belong (a missing value?): {values!r:.60}")
    if floats is None:  # NumPy would drop the imaginary parts with only a warning
        raise InvalidValueError(f"{name} must be real numbers, got complex values {values!r:.60}")
    return floats


def on_device(name, values):
    """Refuse an array on a GPU (CuPy's, a CUDA tensor), which NumPy will not read (was: "must be numbers",
    its repr a NumPy array's): the datasets' helpers work on the host."""
    if hasattr(values, "__cuda_array_interface__"):
        raise InvalidValueError(f"{name} is a {type(values).__module__}.{type(values).__name__} on the GPU; this "
                                f"works on host (NumPy) arrays: give its host copy, x.get() (CuPy) or "
                                f"x.cpu().numpy() (torch)")
