"""Bad input to a communicator, in a world of one process (run by test_inputs.py, which starts it
without mpiexec so that the test process itself never starts MPI). Prints one line per case:
``case|ErrorClass|message`` (``ok`` for none). With the argument ``layout`` (under mpiexec -n 2):
rank 1 passes a longer array than rank 0 to one all-reduce."""
import sys

import numpy as np

import gpubp
from gpubp.distributed.mpi import Communicator, world

ro = np.ones(3)
ro.setflags(write=False)
comm = Communicator()
CASES = {
    "bucket_bytes=0": lambda: Communicator(bucket_bytes=0),
    "bucket_bytes='4MB'": lambda: Communicator(bucket_bytes="4MB"),
    "device='CPU'": lambda: Communicator(device=" CPU").device,
    "transport='MPI'": lambda: Communicator(transport="MPI").transport.name,
    "abort_on_error='no'": lambda: world(abort_on_error="no"),
    "one array": lambda: comm.allreduce_sum_(np.ones(3)),
    "read-only": lambda: comm.allreduce_sum_([np.ones(2), ro]),
    "scale='2'": lambda: comm.allreduce_sum_([np.ones(3)], scale="2"),
    "root=5": lambda: comm.broadcast_([np.ones(3)], root=5),
    "scalars 'a'": lambda: comm.allreduce_scalars(1.0, "a"),
    "data=X": lambda: comm.check_consistent(data=np.ones((4, 2))),
    "local_n=1.5": lambda: comm.allreduce_gradients_(gpubp.mlp(3, [4], 2, "tanh", "cpu", seed=0), 1.5, 3),
}


def run(case, fn):
    try:
        result = fn()
        print(f"{case}|ok|{result}")
    except Exception as exc:
        print(f"{case}|{type(exc).__name__}|{exc}")


if sys.argv[1:] == ["layout"]:
    run(f"layout on rank {comm.rank}", lambda: comm.allreduce_sum_([np.ones(3 + 2 * comm.rank)]))
    sys.exit()
for case, fn in CASES.items():
    run(case, fn)
comm.close()
comm.close()  # a second close does nothing
run("after close", lambda: comm.allreduce_sum_([np.ones(3)]))
