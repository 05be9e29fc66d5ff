#!/usr/bin/env python
"""Data-parallel benchmarks (gpubp/bench/allreduce.py), run under MPI:

    mpiexec -n 2 python scripts/bench_distributed.py [--json out.json [--overwrite]] [--quick]

Rank 0 prints the figures (and writes them as JSON: a file already at --json is replaced only when
it is an earlier result of this script, or with --overwrite; else refused before measuring). With Open MPI as root add
``--allow-run-as-root``; on fewer cores than ranks, ``--oversubscribe``.
"""
import argparse
import json
import os
import sys

# The ranks on this machine share its cores: each gets cores / ranks BLAS threads, set before
# NumPy loads (N ranks with all cores each oversubscribe them N times over).
_LOCAL_RANKS = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or os.environ.get("MPI_LOCALNRANKS") or 1)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(max(1, (os.cpu_count() or 1) // _LOCAL_RANKS)))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gpubp._checks import json_with_keys, output_path  # noqa: E402
from gpubp.bench.allreduce import allreduce, weak_scaling  # noqa: E402  (starts MPI)
from gpubp.checkpoint.atomic import write_atomically  # noqa: E402
from gpubp.distributed.mpi import world  # noqa: E402
from gpubp.errors import GpubpError  # noqa: E402
from gpubp.train.root_only import on_root  # noqa: E402


def is_result(path) -> bool:
    """Whether ``path`` holds what this script writes (``{"allreduce": ..., "weak_scaling": ...}``)."""
    return json_with_keys(path, {"allreduce", "weak_scaling"}, exact=True, limit=1 << 20)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="PATH", help="write the figures here (rank 0)")
    p.add_argument("--overwrite", action="store_true", help="let --json replace a file this script did not write")
    p.add_argument("--quick", action="store_true", help="few repeats (a smoke test)")
    args = p.parse_args()
    comm = world(device="cpu")
    try:
        comm.check_consistent(facts={"--quick": args.quick})  # every rank times the same collectives
        # rank 0 alone writes --json: checked there alone (another rank may see another file system), every
        # rank stopping alike before any measurement
        out = on_root(comm, "checking --json", lambda: args.json and output_path(
            "--json", args.json, is_result, "a distributed benchmark JSON", args.overwrite))
    except GpubpError as exc:
        if not getattr(exc, "everywhere", False):
            raise
        if comm.is_root:  # raised on every rank alike (RankFailure, MismatchError, rank 0's refusal of --json)
            print(f"bench_distributed: error: {exc.__cause__ or exc}", file=sys.stderr)
        return 1
    result = {"allreduce": allreduce(comm, repeat=5 if args.quick else 20, rounds=1 if args.quick else 9),
              "weak_scaling": weak_scaling(comm, batch=32 if args.quick else 256, repeat=3 if args.quick else 20)}
    if comm.is_root:
        a, w = result["allreduce"], result["weak_scaling"]
        print(f"all-reduce of {a['bytes'] / 1e6:.2f} MB in {a['buckets']} bucket(s) on {a['ranks']} ranks: "
              f"{a['bucketed_ms']:.3f} ms, one Allreduce {a['single_allreduce_ms']:.3f} ms, "
              f"ratio {a['ratio_single_over_bucketed']:.2f}")
        print(f"weak scaling, {w['batch_per_rank']} samples per rank: 1 rank {w['one_rank_ms']:.3f} ms, "
              f"{w['ranks']} ranks {w['all_ranks_ms']:.3f} ms, efficiency {w['efficiency']:.2f}")
        if out:
            write_atomically(out, lambda f: f.write(json.dumps(result, indent=1).encode()))
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
