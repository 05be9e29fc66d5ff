"""``gpubp train``: train an MLP on a built-in dataset on the best device."""
from __future__ import annotations

import argparse
import time

HELP = "train an MLP on a built-in dataset (default: 8x8 digits) on the GPU if one works, else the CPU"


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_float(text):
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def layer_sizes(text):
    """argparse type: comma-separated hidden sizes such as ``64,64`` (empty: no hidden layer)."""
    try:
        return [positive_int(h) for h in text.split(",") if h.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected sizes >= 1 separated by commas, e.g. 64,64; got {text!r}") from None


def add_arguments(p):
    from ..layers import ACTIVATIONS
    from ..optim import OPTIMIZERS
    p.add_argument("--dataset", default="digits", choices=["digits", "xor", "spirals"])
    p.add_argument("--layers", type=layer_sizes, default="128,64",
                   help="hidden layer sizes, comma-separated (default 128,64)")
    p.add_argument("--activation", default="relu", choices=[a for a in ACTIVATIONS if a != "identity"])
    p.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS))
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--schedule", default="constant", choices=["constant", "step", "cosine"])
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default=None, help="auto (default, or $GPUBP_DEVICE), cpu, gpu or cuda:N")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0, help="fixes initial weights, data split and batch order")
    p.add_argument("--save", metavar="PATH", help="write the trained model and optimizer to this .npz")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--plot", metavar="PATH", help="write loss/accuracy curves to this PNG (needs gpubp[plot])")


def load(name, seed):
    """(X, y, X_test, y_test) of a built-in dataset; xor has no split to seed."""
    from ..datasets import load_dataset
    return load_dataset("xor") if name == "xor" else load_dataset(name, seed=seed)


def run(args) -> int:
    from .. import get_backend
    from ..backend import auto_choice, default_device
    from ..optim import get_optimizer
    from ..train import evaluate, fit
    from ..network import mlp

    spec = args.device or default_device()
    backend = get_backend(spec, args.dtype)
    why = f" ({auto_choice()[1]})" if spec == "auto" else ""
    print(f"device: {backend.device} [{backend.name}, {backend.dtype}]{why}")
    if args.plot:  # fail before training, not after
        from ..plot import pyplot
        pyplot()
    X, y, X_test, y_test = load(args.dataset, args.seed)
    model = mlp(X.shape[1], args.layers, int(y.max()) + 1, args.activation, backend, seed=args.seed)
    print(f"model: {model}")
    print(f"data: {args.dataset}, {len(X)} training / {len(X_test)} test samples")
    t0 = time.perf_counter()
    optimizer = get_optimizer(args.optimizer, lr=args.lr)
    history = fit(model, X, y, optimizer=optimizer, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, schedule=args.schedule,
                  validation_data=(X_test, y_test), progress=False if args.quiet else None)
    report(history, evaluate(model, X_test, y_test), time.perf_counter() - t0)
    if args.save:
        save(args, model, optimizer, history)
    if args.plot and history.loss:
        from ..plot import plot_history
        print(f"plot: {plot_history(history, args.plot)}")
    return 130 if history.interrupted else 0


def report(history, result, seconds):
    if history.interrupted:
        print("interrupted: reporting the model as trained so far")
    loss = f"  final train loss: {history.loss[-1]:.4f}" if history.loss else ""
    print(f"epochs: {history.epochs}{loss}" + (f"  ({history.stopped})" if history.stopped else ""))
    print(f"test accuracy: {result['accuracy']:.4f}  test loss: {result['loss']:.4f}")
    print(f"time: {seconds:.2f} s")


def save(args, model, optimizer, history):
    from .. import checkpoint
    extra = {"seed": args.seed, "epochs_done": history.epochs, "dataset": args.dataset,
             "history": history.as_dict()}
    print(f"saved: {checkpoint.save(args.save, model, optimizer, extra=extra)}")
