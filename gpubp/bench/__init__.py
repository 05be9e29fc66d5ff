"""gpubp benchmarks: kernel bandwidth, MLP and LeNet steps against PyTorch, scaling.

``python scripts/bench.py`` or ``gpubp bench``; writes JSON and prints a table.
Figures are ratios measured in the same run (against a copy of the same bytes,
the unfused expression, PyTorch eager on the same device), never absolute targets.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time

import numpy as np

from .._checks import json_with_keys, output_path
from ..backend import KERNELS, get_backend
from ..checkpoint.atomic import describe as reason, write_atomically
from ..errors import GpubpError, InvalidValueError
from ..tools.doctor import machine
from .conv import LENET, QUICK_LENET, describe
from .kernels import bench_kernels
from .mlp import CONFIGS, run_isolated, torch_available
from .scaling import bench_scaling

QUICK_CONFIGS = {"a": ([32, 16, 16, 4], "sigmoid", 8), "b": ([16, 32, 32, 16], "relu", 8),
                 "c": ([8] * 11, "sigmoid", 4)}


def record_machine(device) -> dict:
    """The doctor's facts about this machine (``gpubp info``), plus what a benchmark figure
    depends on: the date, the CPU and its load, NumPy's BLAS, PyTorch."""
    facts = machine()
    v = facts["versions"]
    info = {"date": datetime.date.today().isoformat(), "device": device, "gpubp": v["gpubp"],
            "numpy": v["numpy"], "python": v["python"], "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "cpu_threads": facts["cpu_threads"], "huge_pages": facts["huge_pages"],
            "load_average": list(os.getloadavg())}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        pass
    if device != "cpu":
        info.update(versions=v, gpus=facts["devices"])
    if torch_available():
        import torch
        info["torch"] = torch.__version__
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def run(device="cpu", quick=False, threads=None, repeat=5, kernels=True, mlp=True, scaling=True,
        graph=False, progress=lambda message: None, conv=True, deadline=None) -> dict:
    """All benchmarks on ``device``; each MLP and LeNet measurement in its own process.
    ``progress(message)`` is told what starts next (the full run takes minutes). With a
    ``deadline`` (a ``time.monotonic()`` value) what would pass it is stopped or not started,
    and named in ``result["out_of_time"]``: the figures measured by then are kept."""
    backend = get_backend(device)
    device = backend.device
    threads = threads or os.cpu_count()
    result = {"machine": record_machine(device), "threads": threads, "quick": quick}
    late = []

    def isolated(what, impl, cfg, rep):
        row = run_isolated(impl, cfg, device, threads, rep, deadline)
        if row.get("out_of_time"):
            late.append(what)
        return row

    def in_time(what):
        if deadline is not None and time.monotonic() > deadline:
            late.append(what)
            return False
        return True

    if kernels and in_time("kernels"):
        progress(f"kernels: {len(KERNELS)} on {device}")
        n, rep = 1 << 14 if quick else 1 << 24, 1 if quick else repeat
        result["kernels"] = rows = bench_kernels(backend, n=n, repeat=rep)
        if torch_available():
            progress("kernels: PyTorch's own op for each")
            peers = isolated("kernels: PyTorch's", "torch-kernels",
                             {"kernels": list(KERNELS), "n": n, "dtype": backend.dtype.name}, rep)
            for row in rows:
                row["torch"] = peer = peers.get(row["kernel"], {"error": peers.get("error", "not measured")})
                if "ms" in peer:
                    row["ratio_over_torch"] = row["ms"] / peer["ms"]
    if conv:  # before the MLP steps, whose last figures (torch.compile) may take minutes to compile
        result["conv"] = [_bench_lenet(device, quick, repeat, progress, isolated, graph and device != "cpu")]
        if not torch_available():
            result["conv_note"] = "PyTorch is not installed: no peer to compare against (pip install torch)"
    if mlp:  # what the targets compare first (over all three configs), should the time run out
        configs = QUICK_CONFIGS if quick else CONFIGS
        on_gpu, has_torch, rep = graph and device != "cpu", torch_available(), 1 if quick else repeat
        # torch-graph last: torch.compile's first compile in each fresh worker (Inductor, Triton) can
        # take a minute, and a deadline should cut it rather than the figures measured after it
        impls = ["torch"] * has_torch + ["gpubp-planned"] + ["gpubp-graph"] * on_gpu + ["gpubp"] + ["by-hand"] \
            + ["torch-graph"] * (has_torch and on_gpu)
        rows = [{"config": name, "widths": cfg[0], "activation": cfg[1], "batch": cfg[2]} for name, cfg in configs.items()]
        for impl in impls:
            for row, cfg in zip(rows, configs.values()):
                progress(f"MLP step ({row['config']}) {impl}")
                row[impl] = isolated(f"MLP ({row['config']}) {impl}", impl, list(cfg), rep)
        for row, cfg in zip(rows, configs.values()):
            for a, b in (("gpubp", "torch"), ("by-hand", "torch"), ("gpubp", "by-hand"),
                         ("gpubp-planned", "by-hand"), ("gpubp-planned", "gpubp"), ("gpubp-planned", "torch"),
                         ("gpubp-graph", "torch"), ("gpubp-graph", "torch-graph")):
                if "ms" in row.get(a, {}) and "ms" in row.get(b, {}):
                    row[f"ratio_{a}_over_{b}".replace("-", "_")] = row[a]["ms"] / row[b]["ms"]
            progress(f"MLP step ({row['config']}) gpubp-planned and by-hand side by side")
            row["planned_by_hand_paired"] = paired = isolated(f"MLP ({row['config']}) planned and by-hand side by side",
                                                              "gpubp-planned,by-hand", list(cfg), rep)
            if "ratio" in paired:  # gpubp's own overhead, measured where the machine's drift cancels
                row["ratio_gpubp_planned_over_by_hand"] = paired["ratio"]
        result["mlp"] = rows
        if not torch_available():
            result["mlp_note"] = "PyTorch is not installed: no peer to compare against (pip install torch)"
    if scaling and in_time("scaling"):
        progress("scaling: batch, width, depth")
        result["scaling"] = bench_scaling(device, points=2 if quick else 4, repeat=1 if quick else 3, deadline=deadline)
        if len(result["scaling"]) < 3 * (2 if quick else 4):
            late.append(f"scaling after {len(result['scaling'])} points")
    if late:
        result["out_of_time"] = late
    return result


def _bench_lenet(device, quick, repeat, progress, isolated, graphed=False) -> dict:
    """The LeNet step (conv.py): gpubp (eager, planned and, with ``graphed``, the planned step
    replayed as one CUDA graph), and PyTorch on the same device (on a GPU with cuDNN off, the peer
    of gpubp's own kernels, and on); ratios gpubp/PyTorch. ``isolated(what, impl, config,
    repeat)`` runs one measurement (``run``'s, in a fresh process)."""
    cfg = QUICK_LENET if quick else LENET
    row, repeat = {"config": "quick" if quick else "lenet", "lenet": cfg}, 1 if quick else repeat
    impls = ("gpubp", "gpubp-planned") + ("gpubp-graph",) * graphed
    for impl in impls:
        progress(f"LeNet step ({describe(cfg)}) {impl}")
        row[impl] = isolated(f"LeNet {impl}", impl, cfg, repeat)
    if torch_available():
        peers = {"torch": False} if device == "cpu" else {"torch": False, "torch-cudnn": True}
        for name, cudnn in peers.items():
            progress(f"LeNet step {name}")
            row[name] = isolated(f"LeNet {name}", "torch", dict(cfg, cudnn=cudnn), repeat)
            for impl in impls:
                if "ms" in row[impl] and "ms" in row[name]:
                    row[f"ratio_{impl}_over_{name}".replace("-", "_")] = row[impl]["ms"] / row[name]["ms"]
    return row


def table(result) -> str:
    """The result as readable text."""
    m = result["machine"]
    lines = [f"gpubp {m['gpubp']} on {m['device']} ({m['cpu']}, {result['threads']} thread{'s' * (result['threads'] != 1)}), "
             f"NumPy {m['numpy']}" + (f", PyTorch {m['torch']}" if "torch" in m else "")]
    if "kernels" in result:
        nan = float("nan")
        lines += ["", f"{'kernel':26}{'ms':>9}{'GB/s':>8}{'of copy':>9}{'vs unfused':>12}{'torch ms':>10}"
                      f"{'gpubp/torch':>13}  PyTorch's op"]
        lines += [f"{r['kernel']:26}{r['ms']:9.3f}{r['GB_per_s']:8.1f}{r['fraction_of_copy']:9.0%}"
                  f"{r['speedup_vs_unfused']:11.2f}x{r.get('torch', {}).get('ms', nan):10.3f}"
                  f"{r.get('ratio_over_torch', nan):13.2f}  "
                  + r.get("torch", {}).get("how", r.get("torch", {}).get("error", "not measured"))
                  for r in result["kernels"]]
    if "mlp" in result:
        nan = float("nan")
        lines += ["", f"{'MLP step (ms)':34}{'gpubp':>9}{'planned':>9}{'by-hand':>9}{'torch':>9}"
                      f"{'gpubp/torch':>13}{'by-hand/torch':>15}{'planned/by-hand':>17}{'planned/gpubp':>15}"]
        for r in result["mlp"]:
            desc = f"({r['config']}) {'-'.join(map(str, r['widths'][:4]))}{'...' if len(r['widths']) > 4 else ''} {r['activation']} b{r['batch']}"
            ms = [r.get(impl, {}).get("ms", nan) for impl in ("gpubp", "gpubp-planned", "by-hand", "torch")]
            lines.append(f"{desc:34}" + "".join(f"{m:9.3f}" for m in ms) +
                         f"{r.get('ratio_gpubp_over_torch', nan):13.2f}{r.get('ratio_by_hand_over_torch', nan):15.2f}"
                         f"{r.get('ratio_gpubp_planned_over_by_hand', nan):17.2f}"
                         f"{r.get('ratio_gpubp_planned_over_gpubp', nan):15.2f}")
            paired = r.get("planned_by_hand_paired", {})
            if "ratio" in paired:
                lines.append(f"{'    planned, by-hand side by side':34}{'':9}" + "".join(f"{m:9.3f}" for m in paired["ms"]) +
                             "  (one process, alternating rounds: planned/by-hand is their median ratio)")
            allocs = [r.get(k, {}).get("alloc_bytes_per_step") for k in ("gpubp", "gpubp-planned")]
            if None not in allocs:
                lines.append(f"{'    allocated per step after warm-up':34} {allocs[0] / 1024:7.0f}K {allocs[1] / 1024:7.0f}K"
                             "  (eager, planned: a planned step allocates no array, only NumPy's iterator buffer and Python objects)")
            if "gpubp-graph" in r:
                graphs = {k: r.get(k, {}) for k in ("gpubp-graph", "torch-graph")}
                lines.append(f"{'    CUDA graph: gpubp, torch.compile':34}" + "".join(
                    f"{g.get('ms', nan):9.3f}" for g in graphs.values()) +
                    f"   graph/torch eager {r.get('ratio_gpubp_graph_over_torch', nan):.2f},"
                    f" graph/torch graph {r.get('ratio_gpubp_graph_over_torch_graph', nan):.2f}")
                lines += [f"    {k} failed: {g['error']}" for k, g in graphs.items() if "error" in g]
        if "mlp_note" in result:
            lines.append(result["mlp_note"])
    if "conv" in result:
        nan = float("nan")
        torch_label = "torch" if m["device"] == "cpu" else "no cuDNN"
        lines += ["", f"{'LeNet step (ms)':44}{'gpubp':>9}{'planned':>9}{torch_label:>10}{'cuDNN':>9}"
                      f"{'planned/torch':>15}{'planned/cuDNN':>15}"]
        for r in result["conv"]:
            ms = [r.get(impl, {}).get("ms", nan) for impl in ("gpubp", "gpubp-planned", "torch", "torch-cudnn")]
            lines.append(f"{describe(r['lenet']):44}{ms[0]:9.3f}{ms[1]:9.3f}{ms[2]:10.3f}{ms[3]:9.3f}"
                         f"{r.get('ratio_gpubp_planned_over_torch', nan):15.2f}"
                         f"{r.get('ratio_gpubp_planned_over_torch_cudnn', nan):15.2f}")
            if "gpubp-graph" in r:
                lines.append(f"{'    CUDA graph':44}{r['gpubp-graph'].get('ms', nan):18.3f}{'':19}"
                             f"{r.get('ratio_gpubp_graph_over_torch', nan):15.2f}"
                             f"{r.get('ratio_gpubp_graph_over_torch_cudnn', nan):15.2f}")
            errors = {k: r[k]["error"] for k in ("gpubp", "gpubp-planned", "gpubp-graph", "torch", "torch-cudnn")
                      if "error" in r.get(k, {})}
            lines += [f"    {k} failed: {e}" for k, e in errors.items()]
        if "conv_note" in result:
            lines.append(result["conv_note"])
    if "scaling" in result:
        lines += ["", f"{'scaling':10}{'batch':>7}{'width':>7}{'depth':>7}{'ms':>9}{'peak MB':>9}{'planned':>9}"
                      f"{'theory MB':>10}{'planned/theory':>16}"]
        lines += [f"{r['vary']:10}{r['batch']:7}{r['width']:7}{r['depth']:7}{r['ms']:9.3f}"
                  f"{r['peak_bytes'] / 1e6:9.2f}{r['planned_peak_bytes'] / 1e6:9.2f}{r['theoretical_bytes'] / 1e6:10.2f}"
                  f"{r['planned_peak_bytes'] / r['theoretical_bytes']:16.2f}" for r in result["scaling"]]
    return "\n".join(lines)


def add_arguments(p):
    p.add_argument("--device", default="auto", help="auto (a working CUDA GPU, else the CPU; $GPUBP_DEVICE "
                   "overrides auto), cpu, gpu or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="BLAS/torch threads (default: all cores)")
    p.add_argument("--repeat", type=int, default=5, help="timed repeats of each measurement (--quick: 1)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke test)")
    p.add_argument("--only", choices=["kernels", "mlp", "conv", "scaling"], action="append",
                   help="run only these parts (repeatable)")
    p.add_argument("--cuda-graph", action="store_true", help="on a GPU, also time the MLP steps (a)-(c) and the LeNet step replayed as one "
                   "captured CUDA graph each")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    p.add_argument("--overwrite", action="store_true", help="let --json replace a file that is not a benchmark "
                   "JSON of gpubp (kept otherwise: refused before measuring)")


def print_progress(message) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def is_result(path) -> bool:
    """Whether ``path`` holds the JSON that ``main`` writes: ``run``'s result (not a GPU record, ``argv``)."""
    return json_with_keys(path, {"machine", "threads", "quick"}, without={"argv"})


def main(args) -> int:
    if args.overwrite and not args.json:
        raise InvalidValueError("--overwrite lets --json replace a file; give --json PATH too, "
                                "or leave --overwrite out")
    out = args.json and output_path("--json", args.json, is_result, "a benchmark JSON",  # refused before measuring
                                    args.overwrite)
    parts = set(args.only or ["kernels", "mlp", "conv", "scaling"])
    result = run(args.device, quick=args.quick, threads=args.threads, repeat=args.repeat,
                 kernels="kernels" in parts, mlp="mlp" in parts, conv="conv" in parts, scaling="scaling" in parts,
                 graph=args.cuda_graph, progress=print_progress)
    print(table(result))
    if out:
        text = json.dumps(result, indent=1)
        try:
            write_atomically(out, lambda f: f.write(text.encode()))
        except (OSError, MemoryError) as exc:  # a full disk, a read-only mount (root passes the access check)
            print(text)  # the measurements are not lost with the file
            raise GpubpError(f"--json {args.json}: cannot write the results ({reason(exc)}); nothing was written "
                             f"there (a file already there is kept): the JSON is printed above") from None
        print(f"\nwritten: {args.json}")
    return 0
