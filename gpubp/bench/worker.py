"""One step measurement (an MLP, or a LeNet when CONFIG_JSON is a dict with ``"kind": "lenet"``)
in a fresh process (see ``mlp.run_isolated``):
``python -m gpubp.bench.worker IMPL CONFIG_JSON DEVICE THREADS REPEAT`` prints ``{"ms": ...}``."""
import json
import sys

from .mlp import measure

if __name__ == "__main__":
    impl, config, device, threads, repeat = sys.argv[1:6]
    if impl.startswith("torch"):
        import torch
        torch.set_num_threads(int(threads))
    print(json.dumps({"ms": measure(impl, json.loads(config), device, int(repeat))}))
