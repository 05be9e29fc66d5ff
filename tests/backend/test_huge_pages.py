"""A step's flat host arrays kept together on 2 MiB pages (``backend/huge_pages.py``): zeroed,
disjoint, on a huge page boundary, huge pages asked for on the whole 2 MiB pages only (the rest on
4 KiB pages: no memory beyond the bytes asked for), counted while alive (tracemalloc sees none)."""
import gc
from pathlib import Path

import numpy as np
import pytest

import gpubp
from gpubp.backend import huge_pages
from gpubp.bench.memory import peak_bytes
from gpubp.bench.mlp import gpubp_step

MiB = 1 << 20


def _huge_kib(address) -> int:
    """AnonHugePages (KiB) of the mapping of this process that holds ``address`` (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            low, high = (int(x, 16) for x in head.split("-"))
            inside = low <= address < high
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1])
    raise AssertionError(f"no mapping holds {address:#x}")


needs_huge_pages = pytest.mark.skipif(not huge_pages.status().startswith("yes"),
                                      reason=f"huge pages: {huge_pages.status()}")


@pytest.mark.parametrize("sizes, dtype", [([300_000, 300_000], "float32"), ([100_000, 200_000, 1], "float64"),
                                          ([10, 20], "float32"), ([0, 600_000], "float32")])
def test_arrays_are_zeros_of_their_sizes_apart_on_lines_of_their_own(sizes, dtype):
    arrays = huge_pages.zeros(sizes, dtype)
    assert [a.shape for a in arrays] == [(n,) for n in sizes]
    for a in arrays:
        assert a.dtype == np.dtype(dtype) and a.flags.writeable and a.flags.c_contiguous
        assert not a.any()
    for a in arrays:
        a[...] = 1  # each written whole: none overwrote another
    for i, a in enumerate(arrays):
        assert a.all() and not any(np.shares_memory(a, b) for b in arrays[i + 1:])
    nbytes = sum(sizes) * np.dtype(dtype).itemsize
    if nbytes >= huge_pages.PAGE and huge_pages._ADVICE is not None:  # one region, on a huge page boundary
        assert arrays[0].ctypes.data % huge_pages.PAGE == 0
        assert len({id(a.base) for a in arrays}) == 1
        assert all(a.ctypes.data % huge_pages.LINE == 0 for a in arrays)
        ends = [a.ctypes.data + a.nbytes for a in arrays[:-1]]
        assert all(b.ctypes.data - end >= huge_pages.LINE for b, end in zip(arrays[1:], ends))  # a line apart
    else:  # no whole huge page: NumPy's own arrays
        assert all(a.base is None for a in arrays)


def test_a_region_is_counted_while_any_of_its_arrays_lives():
    gc.collect()
    before = huge_pages.live_bytes()
    a, b = huge_pages.zeros([400_000, 400_000], "float32")
    held = huge_pages.live_bytes() - before
    assert (held >= 2 * 400_000 * 4) == (huge_pages._ADVICE is not None)
    del a
    assert huge_pages.live_bytes() - before == held
    view = b[10:20]
    del b
    assert huge_pages.live_bytes() - before == held  # a view of it holds the region
    del view
    gc.collect()
    assert huge_pages.live_bytes() == before


@needs_huge_pages
def test_only_the_whole_2_mib_pages_of_a_region_are_huge():
    """2.5 MiB written whole: one huge page, the last half MiB on 4 KiB pages (no memory taken beyond it)."""
    (a,) = huge_pages.zeros([5 * MiB // 2], "uint8")
    a[...] = 1
    assert _huge_kib(a.ctypes.data) == 2048


def test_a_models_parameters_and_gradients_lie_together_and_a_benchmark_counts_them():
    """One region for both (their TLB entries few); tracemalloc sees no region: ``peak_bytes`` adds it."""
    model = gpubp.network.mlp(784, [512, 512], 10, "sigmoid")
    model.draw_parameters()
    params, grads = model.flat
    assert params.base is grads.base is not None or huge_pages._ADVICE is None
    n = params.nbytes + grads.nbytes
    peak = peak_bytes(lambda: gpubp_step([784, 512, 512, 10], "sigmoid", 8, "cpu", planned=True))
    assert peak >= n, (peak, n)  # the model's parameters and gradients, and then some


@pytest.mark.parametrize("text, said", [("[always] madvise never", "yes (transparent huge pages: always)"),
                                        ("always [madvise] never", "yes (transparent huge pages: madvise)"),
                                        ("always madvise [never]", "no (transparent huge pages: never)"),
                                        (None, "cannot be read"), ("garbled", "cannot be read")])
def test_the_status_names_linuxs_setting_or_why_none_is_read(text, said, monkeypatch, tmp_path):
    setting = tmp_path / "enabled"
    if text is not None:
        setting.write_text(text + "\n")
    monkeypatch.setattr(huge_pages, "SETTING", setting)
    monkeypatch.setattr(huge_pages, "_ADVICE", huge_pages._ADVICE or 14)  # as on Linux
    assert said in huge_pages.status()
    monkeypatch.setattr(huge_pages, "_ADVICE", None)
    assert huge_pages.status() == "no (the system has no madvise: not Linux)"
