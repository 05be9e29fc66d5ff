#!/usr/bin/env python
"""Data-parallel benchmarks (gpubp/bench/allreduce.py), run under MPI:

    mpiexec -n 2 python scripts/bench_distributed.py [--json out.json] [--quick]

Rank 0 prints the figures (and writes them as JSON). With Open MPI as root add
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

from gpubp.bench.allreduce import allreduce, weak_scaling  # noqa: E402  (starts MPI)
from gpubp.distributed.mpi import world  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="PATH", help="write the figures here (rank 0)")
    p.add_argument("--quick", action="store_true", help="few repeats (a smoke test)")
    args = p.parse_args()
    comm = world(device="cpu")
    result = {"allreduce": allreduce(comm, repeat=5 if args.quick else 20, rounds=1 if args.quick else 9),
              "weak_scaling": weak_scaling(comm, batch=32 if args.quick else 256, repeat=3 if args.quick else 20)}
    if comm.is_root:
        a, w = result["allreduce"], result["weak_scaling"]
        print(f"all-reduce of {a['bytes'] / 1e6:.2f} MB in {a['buckets']} bucket(s) on {a['ranks']} ranks: "
              f"{a['bucketed_ms']:.3f} ms, one Allreduce {a['single_allreduce_ms']:.3f} ms, "
              f"ratio {a['ratio_single_over_bucketed']:.2f}")
        print(f"weak scaling, {w['batch_per_rank']} samples per rank: 1 rank {w['one_rank_ms']:.3f} ms, "
              f"{w['ranks']} ranks {w['all_ranks_ms']:.3f} ms, efficiency {w['efficiency']:.2f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
