"""``gpubp gradcheck``: backprop vs finite differences on a small model of your choice.

Entries where the loss has a kink within eps (a ReLU input at 0) are listed under the table as
not compared, not failures; exit 1 only for a real disagreement (see gpubp.tools.gradcheck)."""
from __future__ import annotations

from ..backend import get_backend
from ..backend import parse_spec
from ..errors import GradcheckError, InvalidValueError, OutOfMemoryError
from ..losses import SoftmaxCrossEntropy, get_loss
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
    flags.add_seed(p, "initial weights and data")  # one batch, no order to fix
    p.add_argument("--eps", type=flags.positive_float, default=1e-6, help="finite-difference step")


def check_softmax_outputs(loss, n_out, flag="--widths"):
    """Refuse a softmax over one output: it is 1 whatever the input, so the loss and every
    gradient are 0 and any check of them passes, right or wrong."""
    if isinstance(loss, SoftmaxCrossEntropy) and n_out < 2:
        raise InvalidValueError(f"{flag}: softmax_cross_entropy needs at least 2 outputs (a softmax over one is "
                                f"constant, so every gradient is 0 and nothing is checked); end {flag} with the "
                                f"number of classes, or use --loss bce for one output")


def run(args) -> int:
    widths = args.widths
    if len(widths) < 2:
        raise InvalidValueError(f"--widths wants at least two widths, input to output, like 4,16,3; "
                                f"got {','.join(map(str, widths)) or 'none'}")
    loss = get_loss(args.loss)
    check_softmax_outputs(loss, widths[-1])
    spec = flags.device_spec(args)
    if parse_spec(spec)[1] not in (None, "float64"):
        source = "$GPUBP_DEVICE" if args.device in (None, "auto") else "--device"
        raise InvalidValueError(f"{source} {spec}: gpubp gradcheck runs in float64 (finite differences need "
                                f"it); give the device alone, like --device cpu")
    backend = get_backend(spec, "float64")
    try:
        model = mlp(widths[0], widths[1:-1], widths[-1], args.activation, backend, seed=args.seed)
        model.parameters()  # drawn now: a model too large for memory is refused before the check
    except MemoryError as exc:
        raise OutOfMemoryError(f"--widths {','.join(map(str, widths))} does not fit in memory ({exc}); "
                               f"gradcheck wants a small model") from None
    X, y = flags.synthetic(loss, args.batch_size, widths[0], widths[-1], args.seed)
    print(f"model: {model}\nloss: {args.loss}, batch {args.batch_size}, device {backend.device}")
    try:
        report = gradcheck(model, loss, backend.asarray(X), backend.asarray(y), eps=args.eps)
    except GradcheckError as exc:
        print(exc.report)
        return 1
    print(report)
    if report.kinks:
        print(f"{len(report.kinks)} entr{'y' if len(report.kinks) == 1 else 'ies'} at a kink not compared (not "
              f"failures): the one-sided slopes differ there, so no difference is a derivative; another --seed "
              f"moves the data off the kink")
    return 0
