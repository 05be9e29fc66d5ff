"""``gpubp train``: train an MLP on a built-in dataset on the best device."""
from __future__ import annotations

import time

HELP = "train an MLP on a built-in dataset (default: 8x8 digits) on the GPU if one works, else the CPU"


def add_arguments(p):
    p.add_argument("--dataset", default="digits", choices=["digits", "xor", "spirals"])
    p.add_argument("--layers", default="128,64", help="hidden layer sizes, comma-separated (default 128,64)")
    p.add_argument("--activation", default="relu", choices=["relu", "leaky_relu", "sigmoid", "tanh"])
    p.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--schedule", default="constant", choices=["constant", "step", "cosine"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="auto (default, or $GPUBP_DEVICE), cpu, gpu or cuda:N")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", metavar="PATH", help="write the trained model and optimizer to this .npz")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def build_model(n_in, hidden, n_out, activation, backend, seed):
    """Dense -> activation for each hidden size, then a Dense output layer."""
    from .. import layers
    sizes = [n_in, *hidden]
    stack = []
    init = "he_uniform" if activation in ("relu", "leaky_relu") else "xavier_uniform"
    for a, b in zip(sizes, sizes[1:]):
        stack += [layers.Dense(a, b, init=init, backend=backend), layers.ACTIVATIONS[activation](backend=backend)]
    stack.append(layers.Dense(sizes[-1], n_out, backend=backend))
    from ..network import Sequential
    return Sequential(stack, backend=backend, seed=seed)


def run(args) -> int:
    from .. import checkpoint, get_backend
    from ..backend import auto_choice, default_device
    from ..datasets import load_dataset
    from ..optim import get_optimizer
    from ..train import evaluate, fit

    spec = args.device or default_device()
    backend = get_backend(spec, args.dtype)
    why = f" ({auto_choice()[1]})" if spec == "auto" else ""
    print(f"device: {backend.device} [{backend.name}, {backend.dtype}]{why}")
    X, y, X_test, y_test = load_dataset(args.dataset, seed=args.seed) if args.dataset != "xor" else load_dataset("xor")
    hidden = [int(h) for h in args.layers.split(",") if h.strip()]
    model = build_model(X.shape[1], hidden, int(y.max()) + 1, args.activation, backend, args.seed)
    print(f"model: {model}")
    print(f"data: {args.dataset}, {len(X)} training / {len(X_test)} test samples")
    t0 = time.perf_counter()
    optimizer = get_optimizer(args.optimizer, lr=args.lr)
    history = fit(model, X, y, optimizer=optimizer, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, schedule=args.schedule,
                  validation_data=(X_test, y_test), progress=None if not args.quiet else False)
    seconds = time.perf_counter() - t0
    result = evaluate(model, X_test, y_test)
    if history.interrupted:
        print("interrupted: reporting the model as trained so far")
    print(f"epochs: {history.epochs}  final train loss: {history.loss[-1]:.4f}" if history.loss else "epochs: 0")
    print(f"test accuracy: {result['accuracy']:.4f}  test loss: {result['loss']:.4f}")
    print(f"time: {seconds:.2f} s")
    if args.save:
        print(f"saved: {checkpoint.save(args.save, model, optimizer, extra={'history': history.as_dict()})}")
    return 130 if history.interrupted else 0
