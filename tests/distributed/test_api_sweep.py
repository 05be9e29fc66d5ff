"""Odd calls of the communicator's public methods: a gpubp error naming what is wrong, before any
collective, never a raw traceback or a silently wrong sum; and where ranks call otherwise (arrays
of other layouts, a call one rank refuses), the same error on every rank instead of a hang."""
import subprocess
import sys
from pathlib import Path

import pytest

from gpubp.backend.host_memory import free_bytes
from gpubp.distributed.buckets import FlatBuckets
from gpubp.errors import OutOfMemoryError

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cases():
    pytest.importorskip("mpi4py")
    proc = subprocess.run([sys.executable, str(HERE / "worker_api_sweep.py")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {case: (kind, message) for case, kind, message in
            (line.split("|", 2) for line in proc.stdout.splitlines() if "|" in line)}


@pytest.mark.parametrize("case,kind,words", [
    ("scalars 10**400", "InvalidValueError", "within float64's range (+-1.8e308), got an integer of 401 digits"),
    ("scale 1e40", "InvalidValueError", "beyond float32's +-3.4e+38 (the array at position 0)"),  # was: inf sums
    ("masked", "InvalidValueError", "position 0 is a masked array, whose mask they would drop"),  # was: unmasked
    ("dict", "InvalidValueError", "got dict; pass list(d.values())"),                    # was: "pass [x]"
    ("facts=[1]", "InvalidValueError", "facts must be a dict"),                          # was: TypeError
    ("facts unpicklable", "InvalidValueError", "facts must hold values that can be sent"),  # was: pickle's error
    ("data ragged", "InvalidValueError", "data_fingerprint: array 0 (list) cannot be read as one host array"),
    ("data (X, None)", "InvalidValueError", "array 1 must hold samples along its first axis, got None"),
    ("scaled='yes'", "InvalidValueError", "scaled must be True or False, got 'yes'"),  # was: taken as True
    ("check_consistent model=5", "InvalidValueError", "check_consistent: model must be a gpubp model"),
    ("gradients of 5", "InvalidValueError", "allreduce_gradients_: model must be a gpubp model"),
    ("state with 'sgd'", "InvalidValueError", "optimizer must be a gpubp optimizer"),  # was: AttributeError
    ("check_alike None", "InvalidValueError", "check_alike: model must be a gpubp model (gpubp.Sequential, "
                                              "e.g. gpubp.mlp(...)), got None"),  # was: a pass
    ("check_alike unreadable", "DistributedError", "no rank can sum up its model and optimizer"),  # was: a pass
    ("NumPy to NCCL", "DeviceError", "sums over NCCL on cuda:0, but the array at position 0 is a numpy.ndarray"),
    ("fit of a CPU model over NCCL", "DeviceError", "build the model on comm.device"),  # was: no way out said
    ("mpi_comm=5", "InvalidValueError", "mpi_comm must be an mpi4py intracommunicator"),  # was: AttributeError
    # was: "aborting every rank" said, then a TypeError and no abort
    ("abort code 'x'", "InvalidValueError", "abort: code must be a whole number >= 0, got 'x'"),
    ("masked after", "ok", "[False, True]"),
    ("barrier after close", "StateError", "communicator (rank 0 of 1) is closed"),  # was: a barrier
    ("check_consistent after close", "StateError", "communicator (rank 0 of 1) is closed"),
])
def test_a_communicator_refuses_odd_calls(cases, case, kind, words):
    assert cases[case][0] == kind and words in cases[case][1], cases[case]


def test_ranks_that_call_otherwise_stop_alike():
    """Before: allreduce_scalars of 2 numbers on rank 0 and 3 on rank 1 failed on rank 0 and gave (2, 4, 6)
    on rank 1; a broadcast whose ranks each named themselves root left each its own values; arrays of two
    layouts that both ranks had planned were summed unlike, silently (rank 0's second array got rank 1's
    first's ones); a read-only array, a flat buffer beyond the memory, a communicator closed (for a
    broadcast, barrier, check_alike) or ragged data for check_consistent on rank 1 alone left rank 0
    waiting in the collective."""
    from test_mpi_world import launch
    code, output, _ = launch("worker_api_sweep.py", "ranks", timeout=60)
    lines = dict(line.split("|", 1) for line in output.splitlines() if " on rank " in line and "|" in line)
    for r in (0, 1):
        assert lines[f"swapped on rank {r}"].startswith(
            "MismatchError|rank 1 of 2 passes other arrays to a collective than rank 0: (dtype, shapes) "
            "[('float64', ((2,), (3,)))] on rank 0, [('float64', ((3,), (2,)))] on rank 1"), output[-3000:]
        assert lines[f"scalar counts on rank {r}"].startswith(  # was: MPI_ERR_TRUNCATE; (2, 4, 6) on rank 1
            "MismatchError|rank 1 of 2 passes 3 number(s) to allreduce_scalars, rank 0 2"), output[-3000:]
        assert lines[f"scalar refused on rank {r}"].startswith(  # was: rank 0 left in the sum
            "RankFailure|rank 1 of 2 failed during the call of allreduce_scalars: InvalidValueError: "
            "allreduce_scalars takes numbers, got 'x'"), output[-3000:]
        assert lines[f"ragged data on rank {r}"].startswith(  # was: a ValueError on rank 1, rank 0 left waiting
            "RankFailure|rank 1 of 2 failed during the call of check_consistent: InvalidValueError: data_fingerprint: "
            "array 0 (list) cannot be read"), output[-3000:]
        for what in ("broadcast_", "broadcast_training_state_"):  # was: each rank kept its own values, silently
            assert lines[f"own {'state ' if 'state' in what else ''}root on rank {r}"].startswith(
                f"MismatchError|rank 1 of 2 passes root=1 to {what}, rank 0 root=0"), output[-3000:]
        assert lines[f"read-only on rank {r}"].startswith(
            "RankFailure|rank 1 of 2 failed during the call of allreduce_sum_: InvalidValueError: collectives "
            "write the arrays in place, but the array at position 0 is read-only"), output[-3000:]
        assert lines[f"no memory on rank {r}"].startswith(  # was: rank 0 left in the sum
            "RankFailure|rank 1 of 2 failed during the call of allreduce_sum_: OutOfMemoryError: no memory (a test)"), \
            output[-3000:]
        for what in ("broadcast_", "barrier", "check_alike"):
            assert lines[f"{'' if what == 'broadcast_' else what + ' '}closed on rank {r}"].startswith(
                f"RankFailure|rank 1 of 2 failed during the call of {what}: StateError: this communicator "
                f"(rank 1 of 2) is closed"), output[-3000:]


def test_a_flat_buffer_beyond_free_memory_is_refused_by_gpubp():
    """Before: NumPy's MemoryError ("Unable to allocate 34.4 GiB"), naming no buffer (allreduce_sum_ of
    arrays as large as the free memory makes one)."""
    free = free_bytes()
    if free is None:
        pytest.skip("no /proc/meminfo: the free memory is unknown here")
    with pytest.raises(OutOfMemoryError, match="FlatBuckets: a flat buffer"):
        FlatBuckets([(int(free * 1.5) // 8,)], "float64")
