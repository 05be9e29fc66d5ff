"""``gpubp gradcheck``: backprop vs finite differences on a small model of your choice."""
from __future__ import annotations

from ..backend import get_backend
from ..errors import GradcheckError, InvalidValueError
from ..losses import get_loss
from ..network import mlp
from ..tools.gradcheck import gradcheck
from . import args as flags

HELP = "check backprop against central finite differences (float64) on a chosen small model"


def add_arguments(p):
    p.add_argument("--widths", "--layers", dest="widths", type=flags.widths, default="4,16,3",
                   help="every layer width, input first and output last, comma-separated")
    flags.add_model(p, "sigmoid", loss="softmax_cross_entropy")
    p.add_argument("--batch-size", "--batch", dest="batch_size", type=flags.positive_int, default=8,
                   help="samples in the checked batch")
    flags.add_device(p, dtype=None)
    flags.add_seed(p)
    p.add_argument("--eps", type=flags.positive_float, default=1e-6, help="finite-difference step")


def run(args) -> int:
    widths = args.widths
    if len(widths) < 2:
        raise InvalidValueError(f"--widths wants at least two widths, input to output, like 4,16,3; "
                                f"got {','.join(map(str, widths)) or 'none'}")
    backend = get_backend(flags.device_spec(args), "float64")
    model = mlp(widths[0], widths[1:-1], widths[-1], args.activation, backend, seed=args.seed)
    loss = get_loss(args.loss)
    X, y = flags.synthetic(loss, args.batch_size, widths[0], widths[-1], args.seed)
    print(f"model: {model}\nloss: {args.loss}, batch {args.batch_size}, device {backend.device}")
    try:
        report = gradcheck(model, loss, backend.asarray(X), backend.asarray(y), eps=args.eps)
    except GradcheckError as exc:
        print(exc.report)
        return 1
    print(report)
    return 0
