"""The doctor: healthy here, and each simulated breakage turns into the right item."""
import dataclasses

import numpy as np
import pytest

import gpubp
from gpubp import _compat
from gpubp.backend.kernels import activations
from gpubp.tools.doctor import checks as doctor, facts, selftest
from gpubp.backend import KERNELS

from helpers import GPU_OK, needs_no_gpu


def items_named(items, name):
    return [i for i in items if i.name == name]


def nvrtc_works():
    try:
        return _compat.has_cupy and bool(_compat.cupy.cuda.nvrtc.getVersion())
    except Exception:
        return False


@pytest.fixture(scope="module")
def healthy():
    return doctor.run_checks(expect_gpu=False)


def test_healthy_machine_has_no_failures(healthy):
    assert doctor.exit_code(healthy) == 0, "\n".join(i.line() for i in healthy)
    names = {i.name for i in healthy}
    assert {"versions", "nvrtc", "kernel cache", "tf32", "kernels", "gradients", "parity"} <= names
    assert all(i.status in (doctor.OK, doctor.WARNING) for i in healthy)
    assert all(i.fix for i in healthy if i.status != doctor.OK)  # every warning says what to do
    assert f"gpubp {gpubp.__version__}" in items_named(healthy, "versions")[0].detail


def test_versions_and_devices():
    v = doctor.versions()
    assert v["numpy"] == np.__version__ and v["gpubp"] == gpubp.__version__
    assert (v["cupy"] is not None) == _compat.has_cupy
    assert len(doctor.devices()) >= (1 if GPU_OK else 0)


def test_broken_kernel_fast_path_fails(monkeypatch):
    tanh = KERNELS["tanh"]
    monkeypatch.setitem(KERNELS, "tanh", dataclasses.replace(tanh, numpy=lambda z, t: np.sin(z, out=t)))
    items = doctor.run_checks(expect_gpu=False, checks=(doctor.check_kernels,))
    assert doctor.exit_code(items) == 1
    assert items[0].status == doctor.FAILURE and "tanh.t on cpu" in items[0].detail
    assert selftest.kernel_mismatches(gpubp.get_backend("cpu", "float64")) == ["tanh.t on cpu/float64"]


@pytest.mark.skipif(not nvrtc_works(), reason="NVRTC is not installed (pip install 'gpubp[nvrtc]')")
def test_kernel_that_does_not_compile_fails(monkeypatch):
    relu = KERNELS["relu"]
    monkeypatch.setitem(KERNELS, "relu", dataclasses.replace(relu, cuda="y = z > 0 ? z : undefined_name"))
    [item] = doctor.check_nvrtc(False)
    assert item.status == doctor.FAILURE and "relu/float" in item.detail and "undefined_name" in item.detail


def test_wrong_backward_fails_the_gradient_check(monkeypatch):
    # sigmoid's delta computed with tanh's derivative: a bug parity cannot see (both sides agree)
    monkeypatch.setattr(gpubp.Sigmoid, "backward_kernel", activations.tanh_backward)
    item = next(doctor.check_gradients(False))  # the CPU's (a GPU machine checks its device next)
    assert item.status == doctor.FAILURE and "2.W" in item.detail and "gradcheck_layer" in item.fix


def test_healthy_gradient_check_covers_every_layer():
    item = next(doctor.check_gradients(False))  # the CPU's (a GPU machine checks its device next)
    assert "float64, cpu" in item.detail and item.status == doctor.OK and "10 arrays agree" in item.detail  # W and b of five Dense layers


def test_duplicate_cupy_distributions_fail(monkeypatch):
    class Dist:
        def __init__(self, name):
            self.metadata, self.version = {"Name": name}, "14.0.0"
    fakes = [Dist("cupy-cuda12x"), Dist("cupy-cuda13x"), Dist("numpy"), Dist("cupy-cuda12x")]
    monkeypatch.setattr(facts.importlib.metadata, "distributions", lambda: fakes)
    assert doctor.cupy_distributions() == [("cupy-cuda12x", "14.0.0"), ("cupy-cuda13x", "14.0.0")]
    [item] = items_named(doctor.check_versions(False), "cupy packages")
    assert item.status == doctor.FAILURE and "cupy-cuda12x cupy-cuda13x" in item.fix


@pytest.mark.parametrize("expect_gpu,status", [(False, doctor.WARNING), (True, doctor.FAILURE)])
def test_missing_cupy_is_a_warning_unless_a_gpu_is_expected(monkeypatch, expect_gpu, status):
    monkeypatch.setattr(_compat, "has_cupy", False)
    monkeypatch.setattr(_compat, "cupy", None)
    monkeypatch.setattr(doctor, "cupy_distributions", lambda: [])
    items = doctor.run_checks(expect_gpu, checks=(doctor.check_versions, doctor.check_cuda, doctor.check_nvrtc,
                                                  doctor.check_kernel_cache))
    by_name = {i.name: i for i in items}
    assert by_name["cupy"].status == status and by_name["nvrtc"].status == status
    assert by_name["kernel cache"].status == doctor.OK
    assert doctor.exit_code(items) == int(expect_gpu)


@needs_no_gpu
def test_expected_gpu_missing_fails():
    """Without CuPy the versions check fails, with CuPy but no device the CUDA check does."""
    items = doctor.run_checks(expect_gpu=True, checks=(doctor.check_versions, doctor.check_cuda))
    assert doctor.exit_code(items) == 1


@pytest.mark.skipif(not _compat.has_cupy, reason="the kernel cache only matters with CuPy")
def test_kernel_cache_not_writable(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CUPY_CACHE_DIR", str(blocker / "cache"))
    [item] = doctor.check_kernel_cache(False)
    assert item.status == doctor.FAILURE and "is a file" in item.detail and "CUPY_CACHE_DIR" in item.fix

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "new" / "cache"))
    monkeypatch.setattr(doctor.tempfile, "TemporaryFile", refuse)
    [item] = doctor.check_kernel_cache(False)
    assert item.status == doctor.FAILURE and "not writable" in item.detail


def test_tf32_on_is_a_warning(monkeypatch):
    monkeypatch.setattr(doctor, "tf32_state", lambda: (True, "CUPY_TF32=1"))
    [item] = doctor.check_tf32(False)
    assert item.status == doctor.WARNING and "CUPY_TF32" in item.fix


def test_crashing_check_is_a_failure():
    def check_boom(expect_gpu):
        raise RuntimeError("boom")
        yield
    [item] = doctor.run_checks(False, checks=(check_boom,))
    assert (item.name, item.status) == ("boom", doctor.FAILURE) and "boom" in item.detail


def test_gpu_expected_from_environment(monkeypatch):
    monkeypatch.setenv("GPUBP_DEVICE", "cuda:1")
    assert doctor.gpu_expected()[0] is True


def test_kernel_with_scalar_hyperparameters_is_self_tested(monkeypatch):
    from gpubp.backend import Kernel

    def decay_np(grad, lr, wd, param):  # takes lr/wd as numbers, as optimizer updates do
        if wd:
            param *= 1 - lr * wd
        param -= lr * grad

    good = Kernel("decay", "T grad, T lr, T wd", "T param", "param -= lr * (grad + wd * param)",
                  decay_np, lambda grad, lr, wd, param: param - lr * (grad + wd * param), scalars=("lr", "wd"))
    monkeypatch.setitem(KERNELS, "decay", good)
    ins, outs = selftest.sample_arguments(good, "float32", np.random.default_rng(0))
    assert [np.ndim(a) for a in ins] == [1, 0, 0] and ins[1].dtype == np.float32
    assert selftest.kernel_mismatches(gpubp.get_backend("cpu", "float32")) == []
    wrong = dataclasses.replace(good, reference=lambda grad, lr, wd, param: param - lr * grad)
    monkeypatch.setitem(KERNELS, "decay", wrong)
    assert selftest.kernel_mismatches(gpubp.get_backend("cpu", "float32")) == ["decay.param on cpu/float32"]


@pytest.mark.parametrize("runtime,driver,status", [("12.9", "12.6", doctor.WARNING), ("13.0", "12.8", doctor.FAILURE),
                                                   ("12.4", "12.8", doctor.OK)])
def test_driver_runtime_versions(monkeypatch, runtime, driver, status):
    """CUDA minor-version compatibility: a newer 12.x runtime runs on any 12.x driver."""
    monkeypatch.setattr(_compat, "has_cupy", True)
    monkeypatch.setattr(doctor, "versions", lambda: {"cuda_runtime": runtime, "cuda_driver": driver})
    monkeypatch.setattr(doctor, "devices", lambda: [])
    items = [i for i in doctor.check_cuda(expect_gpu=False) if i.name == "cuda"]
    assert [i.status for i in items] == [status]


@pytest.mark.parametrize("runtime", ["unavailable (CUDARuntimeError)", None])
def test_a_runtime_that_cannot_be_read_is_a_named_failure(monkeypatch, runtime):
    """A driver but no loadable CUDA runtime: before, the check crashed parsing the version."""
    monkeypatch.setattr(_compat, "has_cupy", True)
    monkeypatch.setattr(doctor, "versions", lambda: {"cuda_runtime": runtime, "cuda_driver": "12.8"})
    monkeypatch.setattr(doctor, "devices", lambda: [])
    [item] = [i for i in doctor.check_cuda(expect_gpu=False) if i.name == "cuda"]
    assert item.status == doctor.FAILURE and f"CuPy's CUDA runtime is {runtime}" in item.detail
    assert "reinstall the CuPy wheel" in item.fix and "crashed" not in item.detail


@pytest.mark.parametrize("spec", ["cuda:x", "gpu/float16", "tpu"])
def test_a_bad_gpubp_device_is_a_failure(monkeypatch, spec):
    """Before: the doctor said 'CPU-only machine', all fine, while every default backend refused it."""
    monkeypatch.setenv("GPUBP_DEVICE", spec)
    [item] = doctor.run_checks(False, checks=(doctor.check_device_setting,))
    assert item.status == doctor.FAILURE and repr(spec) in item.detail and "GPUBP_DEVICE" in item.fix
    monkeypatch.setenv("GPUBP_DEVICE", "cpu/float64")
    [item] = doctor.check_device_setting(False)
    assert item.status == doctor.OK and "cpu/float64" in item.detail


@pytest.mark.parametrize("spec", ["gpu", "cuda:3/float64"])
def test_a_gpubp_device_naming_a_gpu_that_does_not_work_is_a_failure(monkeypatch, spec):
    """Before: ``GPUBP_DEVICE=cuda:0 gpubp check --cpu-only`` said ok on a machine without a working
    GPU, while every command without --device then stopped; now a failure even where no GPU is expected."""
    monkeypatch.setenv("GPUBP_DEVICE", spec)
    monkeypatch.setattr(doctor._compat, "gpu_status", lambda index: (False, f"no such device {index}"))
    [item] = doctor.run_checks(False, checks=(doctor.check_device_setting,))
    index = spec.split("/")[0][-1] if ":" in spec else "0"
    assert item.status == doctor.FAILURE and f"no such device {index}" in item.detail
    assert f"names cuda:{index}, which does not work here" in item.detail and "unset GPUBP_DEVICE" in item.fix
    monkeypatch.setattr(doctor._compat, "gpu_status", lambda index: (True, "works"))
    [item] = doctor.check_device_setting(False)
    assert item.status == doctor.OK


def test_a_stray_mpi_variable_does_not_break_info(monkeypatch):
    """Before: a non-numeric OMPI_COMM_WORLD_RANK made machine() (gpubp info) raise ValueError."""
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "x")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert facts.mpi_launch() is None and facts.machine()["mpi"] is None
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    assert facts.mpi_launch() == {"rank": 1, "size": 2, "launcher": "Open MPI"}


def test_expect_gpu_must_be_a_flag():
    with pytest.raises(gpubp.errors.InvalidValueError, match="expect_gpu must be True or False, got 'no'"):
        doctor.run_checks("no", checks=())


def test_a_device_that_cannot_be_queried_is_listed_not_a_crash(monkeypatch):
    """Before: getDeviceProperties' error escaped devices(), so `gpubp info` crashed and the cuda check
    said only that it crashed."""
    from types import SimpleNamespace

    def props(i):
        raise RuntimeError("cudaErrorUnknown")
    fake = SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: 1,
                                                                        getDeviceProperties=props)))
    monkeypatch.setattr(_compat, "cupy", fake)
    monkeypatch.setattr(_compat, "gpu_status", lambda i=0: (False, "cuda:0 is visible but failed"))
    [d] = facts.devices()
    assert d["device"] == "cuda:0" and "cudaErrorUnknown" in d["name"] and d["usable"] is False
    monkeypatch.setattr(_compat, "has_cupy", True)
    monkeypatch.setattr(doctor, "versions", lambda: {"cuda_runtime": "12.8", "cuda_driver": "12.8"})
    [item] = [i for i in doctor.check_cuda(expect_gpu=False) if i.name == "device"]
    assert item.status == doctor.FAILURE and "unreadable (RuntimeError: cudaErrorUnknown)" in item.detail


@pytest.mark.parametrize("spec", ["garbage", "cpu/float16"])
def test_a_bad_gpubp_device_is_one_failure_and_info_names_it(monkeypatch, capsys, spec):
    """Before: the self-test's layers read GPUBP_DEVICE, so the gradients and parity checks were
    reported as crashed ('report this'), and `gpubp info` called the spec the default."""
    monkeypatch.setenv("GPUBP_DEVICE", spec)
    items = doctor.run_checks(False, checks=(doctor.check_device_setting, doctor.check_gradients,
                                             doctor.check_parity))
    assert items[0].status == doctor.FAILURE and len(items) >= 3  # (a GPU machine checks its device too)
    assert all(i.status == doctor.OK for i in items[1:]), items
    from gpubp import cli
    assert cli.main(["info"]) == 0
    assert f"GPUBP_DEVICE={spec} is not a device spec" in capsys.readouterr().out
