"""Bad input to the distributed package: a gpubp error naming it before any collective (a raw
TypeError, or a silently odd run, would leave the other ranks waiting). The communicator cases run
in a one-process world in a child process, so this test process never starts MPI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpubp.distributed import FlatBuckets, grad_scale, local_batches, shard_bounds
from gpubp.distributed.consistency import data_fingerprint
from gpubp.errors import InvalidValueError

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("value", [0, -5, 2.5, True, "4MB", None])
def test_bucket_bytes_must_be_a_positive_whole_number(value):
    """Before: 0, -5, 2.5 and True made one collective per element; '4MB' and None raw errors."""
    with pytest.raises(InvalidValueError, match=f"bucket_bytes must be a whole number >= 1, got {value!r}"):
        FlatBuckets([(3,)], "float32", bucket_bytes=value)


@pytest.mark.parametrize("call,words", [
    (lambda: shard_bounds(5, 0.5, 2), "rank must be a whole number >= 0, got 0.5"),  # was: (1.5, 4.5)
    (lambda: shard_bounds(5, True, 2), "rank must be a whole number >= 0, got True"),
    (lambda: shard_bounds("5", 0, 2), "batch must be a whole number >= 0, got '5'"),   # was: (0, 3)
    (lambda: shard_bounds(5, 1, 2.0), "size must be a whole number >= 1, got 2.0"),
    (lambda: next(local_batches(10, 2.5, 0, 0, 0, 1)), "batch_size must be a whole number >= 1, got 2.5"),
    (lambda: next(local_batches(10, "3", 0, 0, 0, 1)), "batch_size must be a whole number >= 1, got '3'"),
    (lambda: grad_scale(1.5, 3), "local_n must be a whole number >= 0, got 1.5"),      # was: 0.5
])
def test_sharding_arguments_are_whole_numbers(call, words):
    with pytest.raises(InvalidValueError, match=words):
        call()


def test_more_ranks_than_samples_leaves_ranks_empty_but_in_step():
    shares = [list(local_batches(2, 4, 0, 0, r, 4)) for r in range(4)]
    assert [len(s[0][0]) for s in shares] == [1, 1, 0, 0] and {s[0][1] for s in shares} == {2}


def test_object_data_fingerprints_alike_in_every_process():
    """The bytes of an object array are pointers: before, equal data fingerprinted differently (a false
    'training data differs' on another rank)."""
    make = lambda: np.array([str(10 ** 20), 1.5], dtype=object)  # fresh, equal objects
    assert data_fingerprint(make()) == data_fingerprint(make())
    with pytest.raises(InvalidValueError, match="at least one array"):
        data_fingerprint()


@pytest.fixture(scope="module")
def communicator_cases():
    pytest.importorskip("mpi4py")
    proc = subprocess.run([sys.executable, str(HERE / "worker_inputs.py")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {case: (kind, message) for case, kind, message in
            (line.split("|", 2) for line in proc.stdout.splitlines() if "|" in line)}


@pytest.mark.parametrize("case,kind,words", [
    ("bucket_bytes=0", "InvalidValueError", "bucket_bytes must be a whole number >= 1, got 0"),
    ("bucket_bytes='4MB'", "InvalidValueError", "bucket_bytes must be a whole number >= 1, got '4MB'"),
    ("device='CPU'", "ok", "cpu"),                   # was: refused, though get_backend takes 'CPU'
    ("transport='MPI'", "ok", "mpi"),
    ("abort_on_error='no'", "InvalidValueError", "abort_on_error must be True or False, got 'no'"),
    ("one array", "InvalidValueError", "a list of arrays, got ndarray"),  # was: TypeError item assignment
    ("read-only", "InvalidValueError", "array at position 1 is read-only"),  # was: ValueError after the sum
    ("scale='2'", "InvalidValueError", "scale must be a finite number, got '2'"),  # was: accepted as 2
    ("root=5", "InvalidValueError", r"root must be a rank in [0, 0], got 5"),  # was: MPI_ERR_ROOT
    ("scalars 'a'", "InvalidValueError", "allreduce_scalars takes numbers, got 'a'"),
    ("data=X", "InvalidValueError", "data must be a tuple of host arrays"),  # was: '2 samples', one per row
    ("local_n=1.5", "InvalidValueError", "local_n must be a whole number >= 0, got 1.5"),
    ("after close", "StateError", "communicator (rank 0 of 1) is closed"),  # was: a collective on it
])
def test_a_communicator_names_bad_input(communicator_cases, case, kind, words):
    assert communicator_cases[case][0] == kind and words in communicator_cases[case][1], communicator_cases[case]


def test_ranks_passing_arrays_of_other_shapes_are_refused_on_every_rank():
    """Before: rank 0 failed with MPI_ERR_TRUNCATE and rank 1 went on with [2. 2. 2. 2. 2.], read past
    the end of rank 0's three ones."""
    from test_mpi_world import launch
    code, output, _ = launch("worker_inputs.py", "layout", timeout=60)
    lines = sorted(line for line in output.splitlines() if line.startswith("layout on rank"))
    assert len(lines) == 2, output[-3000:]
    for r, line in enumerate(lines):
        assert line.startswith(f"layout on rank {r}|MismatchError|rank 1 of 2 passes other arrays to a collective "
                               f"than rank 0: (dtype, shapes) [('float64', ((3,),))] on rank 0, "
                               f"[('float64', ((5,),))] on rank 1"), line
