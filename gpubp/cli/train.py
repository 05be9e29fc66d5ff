"""``gpubp train``: train an MLP on a built-in dataset on the best device."""
from __future__ import annotations

import time

from ..backend import auto_choice, default_device, get_backend
from ..datasets import load_dataset
from ..network import mlp
from ..optim import get_optimizer
from .._checks import writable_target
from ..tools.plot import check_plot_path, plot_history, pyplot
from ..train import evaluate, fit, save_training
from . import args as flags

HELP = "train an MLP on a built-in dataset (default: 8x8 digits) on the GPU if one works, else the CPU"


def add_arguments(p):
    p.add_argument("--dataset", default="digits", choices=["digits", "xor", "spirals"])
    p.add_argument("--layers", type=flags.widths, default="128,64",
                   help="hidden layer sizes, comma-separated (default 128,64)")
    flags.add_model(p, "relu")
    flags.add_training(p, "adam", 0.01)
    flags.add_schedule(p)
    p.add_argument("--epochs", type=flags.positive_int, default=30)
    p.add_argument("--batch-size", type=flags.positive_int, default=32)
    flags.add_device(p)
    p.add_argument("--save", metavar="PATH", help="write the trained model and optimizer to this .npz")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--plot", metavar="PATH", help="write loss/accuracy curves to this PNG (needs gpubp[plot])")


def load(name, seed):
    """(X, y, X_test, y_test) of a built-in dataset; xor has no split to seed."""
    return load_dataset("xor") if name == "xor" else load_dataset(name, seed=seed)


def run(args) -> int:
    spec = args.device or default_device()
    backend = get_backend(spec, args.dtype)
    why = f" ({auto_choice()[1]})" if spec == "auto" else ""
    print(f"device: {backend.device} [{backend.name}, {backend.dtype}]{why}")
    if args.save:  # fail before training, not after
        writable_target("--save", args.save)
    if args.plot:
        check_plot_path(args.plot, "--plot")
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
    path = save_training(args.save, model, optimizer, history, args.seed, dataset=args.dataset)
    print(f"saved: {path}")
