"""``gpubp parity A B``: train a small seeded model on two backends and report where they differ."""
from __future__ import annotations

from ..datasets import DATASETS, load_dataset
from ..errors import InvalidValueError
from ..losses import SoftmaxCrossEntropy, get_loss
from ..network import mlp
from ..tools.parity import Perturbation, parity
from ..tools.parity.run import FAULT_QUANTITIES
from . import args as flags
from .gradcheck import check_softmax_outputs

HELP = ("train one seeded model on two backends (e.g. cpu gpu, or cpu/float32 cpu/float64) and report "
        "per step and layer where activations, deltas, dW, db and the loss leave tolerance")


def add_arguments(parser):
    parser.add_argument("backends", nargs="*", default=["cpu", "gpu"], metavar="BACKEND",
                        help="two backend specs, DEVICE[/DTYPE] (default: cpu gpu)")
    parser.add_argument("--widths", "--sizes", dest="widths", type=flags.widths, default="8,16,16,3",
                        help="every layer width, input first and output last (--dataset sets the first and last)")
    flags.add_model(parser, "tanh", loss="softmax_cross_entropy")
    flags.add_training(parser, "sgd", 0.1)
    parser.add_argument("--steps", type=flags.positive_int, default=5, help="training steps")
    flags.add_batch_size(parser, 32)
    parser.add_argument("--samples", type=flags.positive_int, default=flags.marked(128),
                        help="synthetic data rows")
    parser.add_argument("--dataset", choices=sorted(DATASETS),
                        help="train on a built-in dataset instead of synthetic data; it sets the input "
                             "and output widths")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="dtype of specs that name none")
    parser.add_argument("--perturb", metavar="LAYER:STEP[:QUANTITY]",
                        help="inject a 1e-3 relative fault on the second backend (Y, dX, dW or db; default dX) "
                             "to see the report localise it")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def build(args):
    """The seeded model and its data (X, y) for ``args``."""
    sizes = list(args.widths)
    if len(sizes) < 2:
        raise InvalidValueError(f"--widths needs at least two widths, input first, like 8,16,3; got {sizes}")
    loss = get_loss(args.loss)
    if args.dataset:
        if flags.given(args, "samples"):
            raise InvalidValueError(f"--samples sizes the synthetic data; --dataset {args.dataset} brings its own: "
                                    f"give one of them")
        X, y = load_dataset(args.dataset)[:2]
        labels = y.dtype.kind in "iu"
        if labels != isinstance(loss, SoftmaxCrossEntropy):
            raise InvalidValueError(f"--dataset {args.dataset} has {'class labels' if labels else 'real-valued targets'}"
                                    f", which --loss {args.loss} cannot train on; use --loss "
                                    f"{'softmax_cross_entropy' if labels else 'mse'}")
        sizes[0], sizes[-1] = X.shape[1], (int(y.max()) + 1 if y.ndim == 1 else y.shape[1])
        check_softmax_outputs(loss, sizes[-1], f"--dataset {args.dataset}")
    else:
        check_softmax_outputs(loss, sizes[-1])
        X, y = flags.synthetic(loss, args.samples, sizes[0], sizes[-1], args.seed)
    model = mlp(sizes[0], sizes[1:-1], sizes[-1], args.activation, "cpu", args.dtype, seed=args.seed)
    return model, X, y


def perturbation(text, n_layers, steps) -> Perturbation:
    """``LAYER:STEP[:QUANTITY]`` as a Perturbation, or an InvalidValueError saying what is wrong."""
    parts = text.split(":")
    try:
        if len(parts) > 3:
            raise ValueError
        layer, step = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise InvalidValueError(f"--perturb wants LAYER:STEP[:QUANTITY] with whole numbers, got {text!r}") from None
    quantity = parts[2] if len(parts) > 2 else "dX"
    if not 0 <= layer < n_layers:
        raise InvalidValueError(f"--perturb: layer must be in [0, {n_layers - 1}] for this model, got {layer}")
    if not 0 <= step < steps:
        raise InvalidValueError(f"--perturb: step must be in [0, {steps - 1}] for --steps {steps}, got {step}")
    if quantity not in FAULT_QUANTITIES:
        raise InvalidValueError(f"--perturb: quantity must be one of {', '.join(FAULT_QUANTITIES)}, got {quantity!r}")
    return Perturbation(layer=layer, step=step, quantity=quantity)


def run(args) -> int:
    if len(args.backends) != 2:
        raise InvalidValueError(f"give two backends, got {len(args.backends)}: {args.backends}")
    model, X, y = build(args)
    fault = perturbation(args.perturb, len(model.layers), args.steps) if args.perturb else None
    report = parity(model, X, y, args.loss, args.optimizer, steps=args.steps, backends=args.backends,
                    lr=args.lr, batch_size=min(args.batch_size, len(X)), perturb=fault)
    print(report.to_json(indent=2) if args.json else report.table())
    return 0 if report.ok else 1
