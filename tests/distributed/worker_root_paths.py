"""Run under ``mpiexec``, each rank in a folder of its own (for test_root_written_paths.py): fit
with ``checkpoint_path`` set to each argument in turn, a relative path whose folder one rank has and
the other lacks. Prints one line per fit and rank: ``<path>|rank <r>|ok`` or
``<path>|rank <r>|<ErrorClass>|<message>``."""
import sys

import numpy as np

import gpubp
from gpubp.distributed.mpi import world

comm = world(device="cpu")
rng = np.random.default_rng(0)
X = rng.standard_normal((16, 3))
y = (X[:, 0] > 0).astype(np.int64)
for path in sys.argv[1:]:
    model = gpubp.mlp(3, [4], 2, "tanh", "cpu", seed=0)
    try:
        gpubp.fit(model, X, y, lr=0.1, epochs=1, batch_size=8, comm=comm, progress=False, checkpoint_path=path,
                  checkpoint_every=1)
        said = "ok"
    except Exception as exc:
        said = f"{type(exc).__name__}|{exc}"
    print(f"{path}|rank {comm.rank}|{said}", flush=True)
