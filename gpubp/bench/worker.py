"""One step measurement (an MLP, or a LeNet when CONFIG_JSON is a dict with ``"kind": "lenet"``)
in a fresh process (see ``mlp.run_isolated``):
``python -m gpubp.bench.worker IMPL CONFIG_JSON DEVICE THREADS REPEAT`` prints ``{"ms": ...}`` and,
for gpubp's MLP steps, the bytes a step allocates after warm-up."""
import json
import sys

from .mlp import allocations, measure

if __name__ == "__main__":
    impl, config, device, threads, repeat = sys.argv[1:6]
    if impl.startswith("torch"):
        import torch
        torch.set_num_threads(int(threads))
    result = {"ms": measure(impl, json.loads(config), device, int(repeat))}
    if impl in ("gpubp", "gpubp-planned"):
        result["alloc_bytes_per_step"] = allocations(impl, json.loads(config), device)
    print(json.dumps(result))
