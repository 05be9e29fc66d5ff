"""``gpubp gradcheck``: backprop vs finite differences on a small model of your choice."""
from __future__ import annotations

HELP = "check backprop against central finite differences (float64) on a chosen small model"


def add_arguments(p):
    p.add_argument("--layers", default="4,16,3", help="layer widths, input to output (default 4,16,3)")
    p.add_argument("--activation", default="sigmoid", choices=["sigmoid", "tanh", "relu", "leaky_relu"])
    p.add_argument("--loss", default="softmax_cross_entropy", choices=["softmax_cross_entropy", "bce", "mse"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default=None, help="auto (default), cpu, gpu or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=float, default=1e-6)


def run(args) -> int:
    import numpy as np

    from ..backend import default_device, get_backend
    from ..network import mlp
    from ..gradcheck import GradcheckError, gradcheck
    from ..losses import get_loss

    try:
        widths = [int(w) for w in args.layers.split(",")]
    except ValueError:
        widths = []
    if len(widths) < 2 or min(widths) < 1:
        raise SystemExit(f"gpubp gradcheck: --layers wants positive widths, input to output, "
                         f"like 4,16,3; got {args.layers!r}")
    backend = get_backend(args.device or default_device(), "float64")
    model = mlp(widths[0], widths[1:-1], widths[-1], args.activation, backend, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.batch, widths[0]))
    if args.loss == "softmax_cross_entropy":
        y = rng.integers(0, widths[-1], args.batch)
    elif args.loss == "bce":
        y = rng.integers(0, 2, (args.batch, widths[-1])).astype(float)
    else:
        y = rng.normal(size=(args.batch, widths[-1]))
    print(f"model: {model}\nloss: {args.loss}, batch {args.batch}, device {backend.device}")
    try:
        report = gradcheck(model, get_loss(args.loss), backend.asarray(X), backend.asarray(y), eps=args.eps)
    except GradcheckError as exc:
        print(exc.report)
        return 1
    print(report)
    return 0
