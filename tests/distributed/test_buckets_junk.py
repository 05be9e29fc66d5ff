"""Junk given to the distributed internals (FlatBuckets, shard, local_batches): an error naming the
argument, never a TypeError, AttributeError or ZeroDivisionError from inside."""
import numpy as np
import pytest

from gpubp.distributed.buckets import FlatBuckets
from gpubp.distributed.sharding import local_batches, shard
from gpubp.errors import DTypeError, InvalidValueError, OutOfMemoryError, ShapeError


@pytest.mark.parametrize("kwargs,error,words", [
    ({"shapes": None}, InvalidValueError, "shapes must be a list of tuples of whole numbers >= 0, got None"),
    ({"shapes": [("x", 3)]}, InvalidValueError, r"got \[\('x', 3\)\]"),              # was: int('x') ValueError
    ({"shapes": [(2, -3)]}, InvalidValueError, r"got \[\(2, -3\)\]"),                  # was: a negative offset
    ({"shapes": [(2.5,)]}, InvalidValueError, r"got \[\(2.5,\)\]"),                    # was: silently 2
    ({"shapes": [(10**30,)]}, OutOfMemoryError, "flat buffer of shape .* would hold 1e\\+30 numbers"),
    ({"dtype": "x"}, DTypeError, "dtype must be a numeric dtype such as 'float32', got 'x'"),
    ({"dtype": []}, DTypeError, r"got \[\]"),                                         # was: ZeroDivisionError
    ({"dtype": None}, DTypeError, "got None"),                                       # was: silently float64
    ({"xp": None}, InvalidValueError, "xp must be an array module"),                  # was: AttributeError
    ({"flat": "x"}, ShapeError, "a flat buffer of 9 float32, got a str"),            # was: AttributeError
])
def test_flat_buckets_name_a_bad_argument(kwargs, error, words):
    args = {"shapes": [(2, 3), (3,)], "dtype": "float32", **kwargs}
    with pytest.raises(error, match=f"FlatBuckets: .*{words}"):
        FlatBuckets(**args)


@pytest.mark.parametrize("method", ["pack", "unpack"])
@pytest.mark.parametrize("arrays,words", [
    (None, "takes a list of 2 arrays, got a NoneType"),                              # was: TypeError len()
    ([1, 2], r"takes a list of 2 arrays, got \['a int', 'a int'\]"),                 # was: AttributeError
    ([None, np.ones(3, np.float32)], r"got \['a NoneType', 'float32 \(3,\)'\]"),
])
def test_pack_and_unpack_take_a_list_of_arrays(method, arrays, words):
    buckets = FlatBuckets([(2, 3), (3,)], "float32")
    with pytest.raises(InvalidValueError, match=words):
        getattr(buckets, method)(arrays)


@pytest.mark.parametrize("scale", ["x", 1j, float("nan"), float("inf"), np.ones(2)])
def test_pack_refuses_a_scale_that_is_no_finite_number(scale):
    """Before: ValueError from float('x'), TypeError from float(1j), the truth value of an array; NaN
    and Inf were written into every gradient."""
    buckets = FlatBuckets([(2, 3), (3,)], "float32")
    with pytest.raises(InvalidValueError, match="FlatBuckets.pack: scale must be a finite number"):
        buckets.pack([np.ones((2, 3), np.float32), np.ones(3, np.float32)], scale)
    buckets.pack([np.ones((2, 3), np.float32), np.ones(3, np.float32)], np.float32(0.5))
    np.testing.assert_array_equal(buckets.flat, 0.5)


@pytest.mark.parametrize("indices", [None, 3, {"a": 1}])
def test_shard_takes_a_sequence(indices):
    with pytest.raises(InvalidValueError, match="shard: indices must be a sequence"):  # was: TypeError
        shard(indices, 0, 2)


def test_local_batches_refuse_a_sample_count_no_array_holds():
    with pytest.raises(OutOfMemoryError, match="local_batches: the sample order of shape"):  # was: ValueError
        list(local_batches(10**30, 4, 0, 0, 0, 2))
