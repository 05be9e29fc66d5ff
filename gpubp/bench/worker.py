"""One step measurement (an MLP, or a LeNet when CONFIG_JSON is a dict with ``"kind": "lenet"``)
in a fresh process (see ``mlp.run_isolated``):
``python -m gpubp.bench.worker IMPL CONFIG_JSON DEVICE THREADS REPEAT`` prints ``{"ms": ...}`` and,
for gpubp's MLP steps, the bytes a step allocates after warm-up; IMPL "a,b" times the two side by
side in this one process (``mlp.measure_paired``); IMPL "torch-kernels" with CONFIG_JSON
``{"kernels": [names], "n": n, "dtype": ...}`` times PyTorch's op for each registry kernel
(``torch_kernels.measure_all``)."""
import json
import sys

from .mlp import allocations, measure, measure_paired

if __name__ == "__main__":
    impl, config, device, threads, repeat = sys.argv[1:6]
    if impl.startswith("torch"):
        import torch
        torch.set_num_threads(int(threads))
    if impl == "torch-kernels":
        from .torch_kernels import measure_all
        cfg = json.loads(config)
        print(json.dumps(measure_all(cfg["kernels"], cfg["n"], device, cfg["dtype"], int(repeat))))
        sys.exit()
    if "," in impl:  # two of one array library, side by side
        rounds = 2 if int(repeat) == 1 else 5  # --quick: a smoke test
        print(json.dumps(measure_paired(impl.split(","), json.loads(config), device, int(repeat), rounds)))
        sys.exit()
    result = {"ms": measure(impl, json.loads(config), device, int(repeat))}
    if impl in ("gpubp", "gpubp-planned"):
        result["alloc_bytes_per_step"] = allocations(impl, json.loads(config), device)
    print(json.dumps(result))
