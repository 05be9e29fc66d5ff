"""``gpubp parity A B``: train a small seeded model on two backends and report where they differ."""
from __future__ import annotations

HELP = ("train one seeded model on two backends (e.g. cpu gpu, or cpu/float32 cpu/float64) and report "
        "per step and layer where activations, deltas, dW, db and the loss leave tolerance")


def add_arguments(parser):
    parser.add_argument("backends", nargs="*", default=["cpu", "gpu"], metavar="BACKEND",
                        help="two backend specs, DEVICE[/DTYPE] (default: cpu gpu)")
    parser.add_argument("--sizes", default="8,16,16,3",
                        help="layer widths, input first (default 8,16,16,3; --dataset sets the first and last)")
    parser.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    parser.add_argument("--loss", default="softmax_cross_entropy", help="mse, bce or softmax_cross_entropy")
    parser.add_argument("--optimizer", default="sgd", help="sgd, momentum, nesterov, rmsprop, adam or adamw (default sgd)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--steps", type=int, default=5, help="training steps (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per step (default 32)")
    parser.add_argument("--samples", type=int, default=128, help="synthetic data rows (default 128)")
    parser.add_argument("--dataset", help="train on a built-in dataset (digits, xor, spirals, house_price) "
                                          "instead of synthetic data; it sets the input and output widths")
    parser.add_argument("--dtype", default="float32", help="dtype of specs that name none (default float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    parser.add_argument("--perturb", metavar="LAYER:STEP[:QUANTITY]",
                        help="inject a 1e-3 relative fault on the second backend (Y, dX, dW or db; default dX) "
                             "to see the report localise it")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def build(args):
    """The seeded model and its data (X, y) for ``args``."""
    from ..errors import GpubpError
    from ..layers import ACTIVATIONS, Dense
    from ..losses import get_loss
    from ..network import Sequential
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        act = ACTIVATIONS[args.activation]
    except (ValueError, KeyError):
        raise GpubpError(f"--sizes must be integers like 8,16,3 and --activation one of "
                         f"{sorted(ACTIVATIONS)}") from None
    if args.dataset:
        from ..datasets import load_dataset
        X, y = load_dataset(args.dataset)[:2]
        sizes[0], sizes[-1] = X.shape[1], (int(y.max()) + 1 if y.ndim == 1 else y.shape[1])
    else:
        X, y = _synthetic(args, sizes, type(get_loss(args.loss)).__name__)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(n_in, n_out), act()]
    return Sequential(layers[:-1], backend="cpu", dtype=args.dtype, seed=args.seed), X, y


def _synthetic(args, sizes, loss_kind):
    import numpy as np
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.samples, sizes[0]))
    if loss_kind == "SoftmaxCrossEntropy":
        return X, rng.integers(0, sizes[-1], size=args.samples)
    if loss_kind == "BinaryCrossEntropy":
        return X, rng.integers(0, 2, size=(args.samples, sizes[-1])).astype(float)
    return X, rng.normal(size=(args.samples, sizes[-1]))


def run(args) -> int:
    from ..errors import GpubpError
    from ..parity import Perturbation, parity
    if len(args.backends) != 2:
        raise GpubpError(f"give two backends, got {len(args.backends)}: {args.backends}")
    fault = None
    if args.perturb:
        parts = args.perturb.split(":")
        fault = Perturbation(layer=int(parts[0]), step=int(parts[1]) if len(parts) > 1 else 0,
                             quantity=parts[2] if len(parts) > 2 else "dX")
    model, X, y = build(args)
    report = parity(model, X, y, args.loss, args.optimizer, steps=args.steps, backends=args.backends,
                    lr=args.lr, batch_size=min(args.batch_size, len(X)), perturb=fault)
    print(report.to_json(indent=2) if args.json else report.table())
    return 0 if report.ok else 1
