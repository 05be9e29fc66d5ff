"""Odd calls of a communicator's public methods (run by test_api_sweep.py): in a world of one
process, started without mpiexec, one line per case, ``case|ErrorClass|message`` (``ok|...`` for
none); with the argument ``ranks`` (under mpiexec -n 2), the cases where rank 1 calls otherwise than
rank 0, one line per rank and case."""
import sys
from types import SimpleNamespace

import numpy as np

import gpubp
from gpubp.distributed import collectives
from gpubp.errors import OutOfMemoryError
from gpubp.distributed.mpi import Communicator, world
from gpubp.distributed.nccl import NCCLTransport


def run(case, fn):
    try:
        result = fn()
        print(f"{case}|ok|{result}", flush=True)
    except Exception as exc:
        print(f"{case}|{type(exc).__name__}|{exc}", flush=True)


comm = world()
if sys.argv[1:] == ["ranks"]:
    r = comm.rank
    comm.allreduce_sum_([np.ones(2), np.ones(3)])  # both layouts planned on both ranks: no new one below
    comm.allreduce_sum_([np.ones(3), np.ones(2)])
    run(f"swapped on rank {r}", lambda: [a.tolist() for a in comm.allreduce_sum_(
        [np.ones(2), np.ones(3)] if r == 0 else [np.ones(3), np.ones(2)])])
    run(f"scalar counts on rank {r}", lambda: comm.allreduce_scalars(*[1.0, 2.0, 3.0][:2 + r]))
    run(f"scalar refused on rank {r}", lambda: comm.allreduce_scalars(1.0, "x" if r else 2.0))
    run(f"ragged data on rank {r}", lambda: comm.check_consistent(data=([[1, 2], [3]] if r else [[1, 2], [3, 4]],)))
    mine = np.full(3, float(r))
    run(f"own root on rank {r}", lambda: comm.broadcast_([mine], root=r))
    model = gpubp.mlp(3, [4], 2, "tanh", "cpu", seed=r)
    run(f"own state root on rank {r}", lambda: comm.broadcast_training_state_(model, root=r))
    ro = np.ones(2)
    ro.setflags(write=r == 0)
    run(f"read-only on rank {r}", lambda: comm.allreduce_sum_([ro, np.ones(3)]))
    made = collectives.FlatBuckets
    if r == 1:  # rank 1 alone cannot make the flat buffer of a new layout
        collectives.FlatBuckets = lambda *_, **__: (_ for _ in ()).throw(OutOfMemoryError("no memory (a test)"))
    run(f"no memory on rank {r}", lambda: comm.allreduce_sum_([np.ones(7)]))
    collectives.FlatBuckets = made
    if r == 1:
        comm.close()
    run(f"closed on rank {r}", lambda: comm.broadcast_([np.ones(2), np.ones(3)]))
    run(f"barrier closed on rank {r}", comm.barrier)
    run(f"check_alike closed on rank {r}", lambda: comm.check_alike(model))
    sys.exit()

model = gpubp.mlp(3, [4], 2, "tanh", "cpu", seed=0)
masked = np.ma.array([1.0, 2.0], mask=[False, True])
junk_state = SimpleNamespace(t=0, lr=0.1, state={"0.W": 5})  # an optimizer's look, slots state_digests cannot read
CASES = {
    "scalars 10**400": lambda: comm.allreduce_scalars(1.0, 10 ** 400),
    "scale 1e40": lambda: comm.allreduce_sum_([np.ones(2, np.float32)], scale=10 ** 40),
    "masked": lambda: comm.allreduce_sum_([masked]),
    "dict": lambda: comm.broadcast_(model.parameters()),
    "facts=[1]": lambda: comm.check_consistent(facts=[1]),
    "check_consistent model=5": lambda: comm.check_consistent(5),
    "gradients of 5": lambda: comm.allreduce_gradients_(5, 1, 1),
    "state with 'sgd'": lambda: comm.broadcast_training_state_(model, "sgd"),
    "facts unpicklable": lambda: comm.check_consistent(facts={"f": lambda: 1}),
    "data ragged": lambda: comm.check_consistent(data=([[1.0, 2.0], [3.0]],)),
    "data (X, None)": lambda: comm.check_consistent(data=(np.ones((2, 3)), None)),
    "scaled='yes'": lambda: comm.allreduce_gradients_(model, 1, 1, scaled="yes"),
    "check_alike None": lambda: comm.check_alike(None),
    "check_alike unreadable": lambda: comm.check_alike(model, junk_state),
}
CASES["mpi_comm=5"] = lambda: Communicator(mpi_comm=5)
CASES["abort code 'x'"] = lambda: comm.abort("a test", code="x")
nccl = world()
nccl.transport = object.__new__(NCCLTransport)  # as made on cuda:0, without a GPU: only its checks are asked
nccl.transport.device_id = 0
X, y = np.random.default_rng(0).normal(size=(8, 3)), np.arange(8) % 2
CASES["NumPy to NCCL"] = lambda: nccl.allreduce_sum_([np.ones(2)])
CASES["fit of a CPU model over NCCL"] = lambda: gpubp.fit(model, X, y, epochs=1, comm=nccl, progress=False)
for case, fn in CASES.items():
    run(case, fn)
print(f"masked after|ok|{masked.mask.tolist()}")
comm.close()
run("barrier after close", comm.barrier)
run("check_consistent after close", comm.check_consistent)
