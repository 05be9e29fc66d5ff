"""``gpubp vanishing``: a deep sigmoid net's first-layer gradient vs the same net with ReLU."""
from __future__ import annotations

from ..backend import get_backend
from ..errors import GpubpError, InvalidValueError, OutOfMemoryError
from ..tools.diagnostics import format_table, vanishing_experiment
from ..tools.plot import check_plot_path, plot_gradient_norms
from . import args as flags

HELP = "show vanishing gradients: per-layer ||dW|| of a deep sigmoid net vs the same net with ReLU"


def add_arguments(p):
    p.add_argument("--depth", type=flags.positive_int, default=10, help="hidden layers")
    p.add_argument("--width", type=flags.positive_int, default=32, help="hidden width")
    p.add_argument("--epochs", type=flags.nonnegative_int, default=0,
                   help="also train this many epochs with Adam and show the last epoch")
    p.add_argument("--lr", type=flags.positive_float, default=flags.marked(0.01),
                   help="learning rate of the --epochs of training")
    flags.add_device(p)
    flags.add_seed(p)
    p.add_argument("--plot", metavar="PATH", type=flags.output_file, default=flags.marked("vanishing_gradients.png"),
                   help="PNG of the norms (needs gpubp[plot])")
    p.add_argument("--no-plot", action="store_true", help="print the table only")
    flags.add_overwrite(p, "--plot", "a plot drawn by gpubp")


def run(args) -> int:
    backend = get_backend(flags.device_spec(args), flags.dtype(args))
    if args.epochs == 0 and flags.given(args, "lr"):
        raise InvalidValueError("--lr sets the training of --epochs N, and --epochs is 0 (gradients at "
                                "initialisation only): give --epochs too, or leave --lr out")
    if args.no_plot and flags.given(args, "plot"):
        raise InvalidValueError("--plot PATH asks for the PNG that --no-plot turns off: give one of them")
    if args.no_plot and args.overwrite:
        raise InvalidValueError("--overwrite lets --plot replace a file, and --no-plot writes none: give one of them")
    if not args.no_plot:  # a path that cannot be written, or someone's file there, is refused before the experiment
        flags.distinct_files({"--plot": args.plot})  # a checkpoint there: kept, even with --overwrite
        check_plot_path(args.plot, "--plot", overwrite=args.overwrite)
    try:
        result = vanishing_experiment(depth=args.depth, width=args.width, seed=args.seed,
                                      backend=backend, epochs=args.epochs, lr=args.lr)
    except MemoryError as exc:  # NumPy's (CuPy's is an OutOfMemoryError already, a MemoryError too)
        raise OutOfMemoryError(f"--depth {args.depth} --width {args.width} does not fit in memory "
                               f"({exc}); use a smaller --width or --depth") from None
    print(f"{args.depth} hidden layers of {args.width} on the digits data, {backend.device} "
          f"{backend.dtype}; one batch of 256 at initialisation:")
    print(format_table(result, epoch=0))
    if args.epochs > 0:
        print(f"\nmean over the batches of epoch {args.epochs} of training:")
        print(format_table(result, epoch=-1).rsplit("\n", 1)[0])
    if args.no_plot:
        return 0
    try:
        path = plot_gradient_norms({k: result[k] for k in ("sigmoid", "relu")}, args.plot,
                                   title=f"digits: {args.depth} hidden layers of {args.width}, sigmoid vs ReLU, "
                                         f"||dW|| at initialisation", overwrite=args.overwrite)
    except GpubpError as exc:
        print(f"no plot: {exc}")
        return 0
    print(f"plot: {path}")
    return 0
