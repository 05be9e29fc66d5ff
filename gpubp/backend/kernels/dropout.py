"""Dropout's counter-based mask: a hash of the element's index and a key, computed where the
data lives, the same bits on NumPy and CUDA (integer arithmetic only).

For element ``i`` (its flat index in C order, plus ``offset``: where the array's first element
sits in the batch the mask is drawn for, 0 in one process; a data-parallel rank's share of a
global batch starts past the shares before it, so the ranks' masks together are the single
process's) and the step's 64-bit key ``(k0, k1)``::

    h(i)    = MurmurHash3_x86_32 of the 12 bytes (lo32(i), hi32(i), k1), little-endian words,
              with seed k0        (Austin Appleby's MurmurHash3, public domain: smhasher's
                                   MurmurHash3.cpp; its finaliser is the "fmix32" below)
    keep[i] = h(i) >= t,          t = min(round(p * 2^32), 2^32 - 1)
    mask[i] = keep[i] / (1 - p)   (the scale rounded once, on the host, to the arrays' dtype)
    y[i]    = x[i] * mask[i]

For a fixed key h is a bijection of the low 32 bits of the index, so over any 2^32 consecutive
indices exactly 2^32 - t are kept: keep is Bernoulli(1 - t / 2^32), and |t / 2^32 - p| <= 2^-33
(2^-32 where t is clamped, p > 1 - 2^-33). The key of a (seed, step) is the (step + 1)-th output
of SplitMix64 seeded with ``seed`` (Steele, Lea and Flood 2014; Vigna's splitmix64.c):
``key = mix64(seed + (step + 1) * 0x9E3779B97F4A7C15 mod 2^64)``, one key per step of a seed
(mix64 is a bijection and the increment odd), unrelated keys for unrelated seeds. The key enters
the hash after the index, so all 64 bits of it reach every element.

The NumPy path computes the hash in 32-bit unsigned words, in place, in scratch arrays kept per
thread (the backend launches large arrays in blocks and passes each block's first index as
``start``); the reference is the same formula written plainly in 64-bit words over the whole array.
"""
from __future__ import annotations

import numpy as np

from ..._compat import cupy, is_cupy_array
from .registry import Kernel, register
from .scratch import scratch

M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2^64 / golden ratio, odd
C1, C2, N = 0xCC9E2D51, 0x1B873593, 0xE6546B64  # MurmurHash3_x86_32's block constants
F1, F2 = 0x85EBCA6B, 0xC2B2AE35  # its finaliser fmix32


def mix64(z: int) -> int:
    """SplitMix64's output function (a bijection of 64-bit words)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def key_words(seed: int, step: int) -> tuple[int, int]:
    """``(k0, k1)``: the low and high words of the key of ``(seed, step)`` (whole numbers >= 0)."""
    key = mix64((seed + (step + 1) * GAMMA) & M64)
    return key & M32, key >> 32


def threshold(p: float) -> int:
    """``t = min(round(p * 2^32), 2^32 - 1)`` for 0 <= p < 1: an element is kept when its hash is >= t
    (p * 2^32 is exact in float64; round() rounds half to even)."""
    return min(round(p * 2**32), M32)


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M32


def _mixed_word(k: int) -> int:
    """MurmurHash3's block mixing of one word ``k`` (a host integer)."""
    return (_rotl((k * C1) & M32, 15) * C2) & M32


# -- the NumPy path: 32-bit words in place, scratch kept per thread ------------------------

_iota = np.arange(1 << 17, dtype=np.uint32)  # 0, 1, 2, ...: grown (never written) when a launch is longer


def _scratch(n):
    """Two uint32 arrays and a bool array of ``n`` elements, this thread's own (``scratch.scratch``):
    a step's mask allocates nothing once the first has run."""
    return scratch((n,), np.uint32, "dropout h"), scratch((n,), np.uint32, "dropout tmp"), \
        scratch((n,), np.bool_, "dropout keep")


def _rotl_in_place(h, r, tmp):
    np.right_shift(h, 32 - r, out=tmp)
    np.left_shift(h, r, out=h)
    h |= tmp


def _word_in(h, word, tmp):
    """``h ^= k; h = rotl(h, 13); h = 5 h + n``, the block step, for a word ``k`` already mixed (a
    host integer, or an array of them)."""
    h ^= word if isinstance(word, np.ndarray) else np.uint32(word)
    _rotl_in_place(h, 13, tmp)
    h *= np.uint32(5)
    h += np.uint32(N)


def murmur3_indices(h, tmp, start, k0, k1):
    """``h[j] = MurmurHash3_x86_32((lo32(i), hi32(i), k1), seed k0)`` for ``i = start + j``, in place
    (``tmp``: scratch of h's size)."""
    global _iota
    n = h.size
    if _iota.size < n:
        _iota = np.arange(n, dtype=np.uint32)
    np.add(_iota[:n], np.uint32(start & M32), out=h)  # lo32(start + j): uint32 arithmetic wraps
    h *= np.uint32(C1)                                # the index's block: mixed, then into seed k0
    _rotl_in_place(h, 15, tmp)
    h *= np.uint32(C2)
    h ^= np.uint32(k0)
    _rotl_in_place(h, 13, tmp)
    h *= np.uint32(5)
    h += np.uint32(N)
    at = 0
    while at < n:  # hi32(i): one value per run of 2^32 indices
        end = min(n, at + (1 << 32) - ((start + at) & M32))
        _word_in(h[at:end], _mixed_word((start + at) >> 32), tmp[at:end])
        at = end
    _word_in(h, _mixed_word(k1), tmp)
    h ^= np.uint32(12)                                # the length in bytes, then fmix32
    np.right_shift(h, 16, out=tmp)
    h ^= tmp
    h *= np.uint32(F1)
    np.right_shift(h, 13, out=tmp)
    h ^= tmp
    h *= np.uint32(F2)
    np.right_shift(h, 16, out=tmp)
    h ^= tmp


def _dropout_np(x, k0, k1, t, offset, scale, y, mask, start=0):
    h, tmp, keep = _scratch(x.size)
    murmur3_indices(h, tmp, start + int(offset), int(k0), int(k1))
    np.greater_equal(h, np.uint32(int(t)), out=keep)
    np.copyto(mask, keep.reshape(x.shape))  # keep / (1 - p): scale or 0 (a cast in copyto needs no buffer)
    mask *= scale
    np.multiply(x, mask, out=y)


def _dropout_ref(x, k0, k1, t, offset, scale, y=None, mask=None):
    xp = cupy if is_cupy_array(x) else np
    i = (xp.arange(x.size, dtype=xp.uint64) + xp.uint64(int(offset))).reshape(x.shape)
    h = xp.full(x.shape, int(k0), dtype=xp.uint64)
    for word in (i & M32, i >> 32, xp.full(x.shape, int(k1), dtype=xp.uint64)):
        k = (word * C1) & M32
        k = (((k << 15) | (k >> 17)) & M32) * C2 & M32
        h ^= k
        h = ((h << 13) | (h >> 19)) & M32
        h = (h * 5 + N) & M32
    h ^= 12
    h ^= h >> 16
    h = (h * F1) & M32
    h ^= h >> 13
    h = (h * F2) & M32
    h ^= h >> 16
    m = xp.where(h >= int(t), scale, 0)
    return x * m, m


# The hash in 32-bit unsigned words, as the NumPy path computes it; `i` is the element's flat index.
_CUDA = """const unsigned long long idx = (unsigned long long)i + offset;
const unsigned int words[3] = {(unsigned int)idx, (unsigned int)(idx >> 32), k1};
unsigned int h = k0;
for (int w = 0; w < 3; ++w) {
    unsigned int k = words[w] * 0xcc9e2d51u;
    k = ((k << 15) | (k >> 17)) * 0x1b873593u;
    h ^= k;
    h = (h << 13) | (h >> 19);
    h = h * 5u + 0xe6546b64u;
}
h ^= 12u;
h ^= h >> 16; h *= 0x85ebca6bu; h ^= h >> 13; h *= 0xc2b2ae35u; h ^= h >> 16;
const T m = h >= t ? scale : (T)0;
mask = m;
y = x * m"""

dropout = register(Kernel(
    "dropout", "T x, uint32 k0, uint32 k1, uint32 t, uint64 offset, T scale", "T y, T mask",
    _CUDA, _dropout_np, _dropout_ref,
    "mask = [murmur3(offset + i, key) >= t] / (1 - p), y = x * mask (key from seed and step, t = p 2^32).",
    scalars=("k0", "k1", "t", "offset", "scale"), ulps=(2, 2),  # the scale rounded once, one product
    examples=((*key_words(0, 0), threshold(0.5), 0, 2.0), (*key_words(42, 7), threshold(0.1), 640, 1 / 0.9),
              (*key_words(2**40 + 3, 123456), threshold(0.8), 2**32 - 100, 5.0),
              (*key_words(7, 1), threshold(0.0), 0, 1.0)),
    indexed=True,
))
