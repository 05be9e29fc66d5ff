"""Host arrays larger than the memory the machine has free are refused before they are made
(gpubp/backend/host_memory.py): NumPy would make them (memory is promised lazily) and the OOM
killer end the process once they were written, without a word."""
import pytest

import gpubp
from gpubp.backend import host_memory
from gpubp.errors import OutOfMemoryError
from gpubp.plan import StepPlan
from helpers import needs_gpu


@pytest.fixture
def one_gib_free(monkeypatch):
    monkeypatch.setattr(host_memory, "free_bytes", lambda: 2**30)


@pytest.mark.parametrize("method", ["zeros", "empty"])
def test_an_array_beyond_the_free_memory_is_refused_saying_both_sizes(method, one_gib_free):
    backend = gpubp.get_backend("cpu", "float32")
    with pytest.raises(OutOfMemoryError, match=rf"{method}: an array of shape \(536870912,\) holds 5.37e\+08 values, "
                                               r"2 GiB, and this machine has 1 GiB free \(memory and swap\)"):
        getattr(backend, method)((2**29,))
    assert getattr(backend, method)((2**20,)).shape == (2**20,)  # below LARGE: made


def test_a_plan_for_a_batch_that_does_not_fit_is_refused_before_it_is_made(one_gib_free):
    model = gpubp.Sequential([gpubp.Dense(8, 2)], seed=0)
    with pytest.raises(OutOfMemoryError, match=r"holds 1.07e\+09 values, 4 GiB"):
        StepPlan(model, "mse", "sgd", (2**27, 8))


def test_small_arrays_do_not_read_the_free_memory(monkeypatch):
    def unread():
        raise AssertionError("read /proc/meminfo for a small array")
    monkeypatch.setattr(host_memory, "free_bytes", unread)
    assert gpubp.get_backend("cpu", "float64").zeros((1000, 1000)).sum() == 0


def test_free_bytes_reads_this_machine_or_says_it_cannot():
    free = host_memory.free_bytes()
    assert free is None or 0 < free < 2**50


def test_junk_shapes_are_left_to_the_backends_own_errors(one_gib_free):
    with pytest.raises(gpubp.errors.ShapeError, match="shape must be a whole number"):
        gpubp.get_backend("cpu", "float32").zeros(("x", 3))


@needs_gpu
def test_a_gpu_array_is_not_held_to_the_hosts_free_memory(one_gib_free):
    assert gpubp.get_backend("cuda:0", "float32").zeros((2**29,)).shape == (2**29,)  # 2 GiB on the device
