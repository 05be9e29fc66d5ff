"""``gpubp train``: train an MLP (or a small CNN) on a built-in dataset or your own CSV/.npz."""
from __future__ import annotations

import contextlib
import io
import os
import time
import warnings

from .. import checkpoint
from ..checkpoint.atomic import describe
from ..checkpoint.claim import Claim, signature
from .._checks import output_path, writable_target
from .._compat import gpu_status
from ..backend import get_backend
from ..errors import CheckpointError, GpubpError, GpubpWarning, InvalidValueError
from ..history import EpochLog, is_epoch_log
from ..network import Sequential, mlp
from ..nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from ..optim import OPTIMIZERS, get_optimizer
from ..tools.plot import check_plot_path, plot_history, pyplot
from ..train import evaluate, fit
from ..train.epoch import guard
from ..train.resume import refuse_overwrite
from ..train.root_only import on_root
from . import args as flags
from .claim import LogClaim
from .data import BUILT_IN, in_target_units, prepare, raw_mse, target_line
from .resume import check_model_flags, continue_saved
from .saving import kept_of, save_run

HELP = ("train an MLP on your own CSV/.npz (--data) or a built-in dataset (default: 8x8 digits), "
        "on the GPU if one works, else the CPU")
DEFAULTS = {"mlp": (0.01, "constant"), "cnn": (0.005, "cosine")}  # (lr, schedule) per --model
AS_IT_IS = {"scaler": None}  # the data record of a model trained without gpubp train's: data read unscaled


def add_arguments(p):
    d = p.add_argument_group("data")
    d.add_argument("--data", metavar="PATH", type=flags.file_path,
                   help="your own data: a CSV with a header row, or an .npz with X and y")
    d.add_argument("--target", metavar="COLUMN", type=flags.column,
                   help="the CSV column to predict (default: the last)")
    d.add_argument("--val-split", type=flags.fraction, default=flags.marked(0.1), metavar="FRACTION",
                   help="share of the training data held out for validation (seeded; stratified for "
                        "classes; 0: none; --resume: the saved run's)")
    d.add_argument("--test", metavar="PATH", type=flags.file_path, help="a test file for --data, read like it")
    d.add_argument("--dataset", default=flags.marked("digits"), choices=BUILT_IN,
                   help="built-in data when --data is not given (xor trains and tests on its 4 points; "
                        "--resume: the saved run's)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default=flags.marked("mlp"), choices=list(DEFAULTS),
                   help="mlp, or cnn: Conv-ReLU-Pool-Conv-ReLU-Pool-Dense on 1x8x8 digits or (N, C, H, W) data "
                        "(--resume: the saved model's)")
    flags.add_hidden(m, flags.marked([128, 64]))
    flags.add_model(m, flags.marked("relu"), loss=flags.marked("softmax_cross_entropy"),
                    losses=["softmax_cross_entropy", "mse"])
    t = p.add_argument_group("training")
    t.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS),
                   help="update rule (default: adam, or the resumed run's)")
    t.add_argument("--lr", type=flags.positive_float, default=None,
                   help="learning rate (default: 0.01 for mlp, 0.005 for cnn, or the resumed run's)")
    t.add_argument("--schedule", default=None, choices=["constant", "step", "cosine"],
                   help="learning-rate schedule (default: constant for mlp, cosine for cnn, or the resumed run's)")
    flags.add_seed(t)
    t.add_argument("--epochs", type=flags.positive_int, default=30, help="epochs in all (a resumed run counts its own)")
    flags.add_batch_size(t, flags.marked(32))
    t.add_argument("--patience", type=flags.positive_int,
                   help="stop after N epochs without a better validation score (training loss without a "
                        "validation split)")
    t.add_argument("--restore-best", action="store_true",
                   help="end with the weights of the best epoch, judged as --patience judges (they are what "
                        "--save writes)")
    flags.add_device(t)
    for action in p._actions:  # the shared flags, as they read here
        if action.dest == "dtype":
            action.help = "floating-point type (--resume: the saved one, unless given)"
        elif action.dest in ("hidden", "activation"):
            action.help += " (--model mlp)"
        elif action.dest in ("loss", "seed", "batch_size"):
            action.help += " (--resume: the saved run's)"
    t.add_argument("--cuda-graph", action="store_true",
                   help="on a GPU, replay each training step as one captured CUDA graph (--model mlp and cnn)")
    t.add_argument("--distributed", action="store_true",
                   help="data parallelism over the ranks of `mpiexec -n N gpubp train --distributed` "
                        "(needs gpubp[mpi]; on CUDA one GPU per rank)")
    o = p.add_argument_group("output")
    o.add_argument("--save", metavar="PATH", type=flags.output_file,
                   help="write the trained model, optimizer and data scaling to this .npz")
    o.add_argument("--checkpoint-every", type=flags.positive_int, metavar="N", help="also write --save every N epochs")
    o.add_argument("--resume", metavar="PATH", type=flags.file_path, help="continue the run saved in this checkpoint")
    o.add_argument("--overwrite", action="store_true",
                   help="let --save, --log and --plot replace another run's checkpoint, log or plot, or a file "
                        "gpubp did not write (kept otherwise: refused before training)")
    o.add_argument("--log", metavar="PATH", type=flags.output_file,
                   help="one line per epoch: CSV for a .csv, else JSON lines (.jsonl)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.add_argument("--plot", metavar="PATH", type=flags.output_file,
                   help="write loss/accuracy curves to this PNG (needs gpubp[plot])")


def device_line(spec, backend) -> str:
    """The first line of a run: the device, and why when ``auto`` chose the CPU."""
    why = ""
    if spec == "auto" and backend.device == "cpu":
        why = f" (no GPU: {gpu_status(0)[1].split(' (')[0].split(';')[0]})"
    return f"device: {backend.device}, {backend.dtype}{why}"


def run(args) -> int:
    comm = communicator(args) if args.distributed else None
    quiet = comm is not None and not comm.is_root  # one report, from rank 0
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        try:
            return train(args, comm)
        except (Exception, KeyboardInterrupt) as exc:  # main() says any of them in one line and returns 1
            if comm is None or comm.size == 1 or getattr(exc, "everywhere", False):
                if quiet and isinstance(exc, GpubpError):
                    return 1  # raised on every rank alike: rank 0 prints the one line
                raise
            # met by this rank alone, maybe (a Ctrl-C outside fit, whose ranks stop together; a file; stdout
            # closed): the others may be waiting for it in a collective, so every rank is ended (MPI_Abort)
            comm.abort("gpubp train: interrupted" if isinstance(exc, KeyboardInterrupt) else
                       f"gpubp train: error: {describe(exc)}")


def communicator(args):
    """The MPI world of this process, its device agreed by every rank (importing gpubp's MPI
    module starts MPI, so it is imported only for --distributed)."""
    from ..distributed.mpi import MPI, world
    spec = flags.device_spec(args)
    try:
        return world(device="cuda" if spec.startswith(("gpu", "cuda")) else spec)
    except GpubpError as exc:  # raised on every rank alike (no GPU on some rank): rank 0 says it
        if getattr(exc, "everywhere", False) and MPI.COMM_WORLD.Get_rank() != 0:
            raise SystemExit(1) from None
        raise


def train(args, comm) -> int:
    spec = comm.device if comm else flags.device_spec(args)
    with guard(comm, "checking the flags and outputs"):
        _check_flags(args)
        check_model_flags(args)
        # the outputs rank 0 alone writes, checked there alone (another rank may see another file system)
        claim, log_seen = on_root(comm, "checking the flags and outputs", lambda: _check_outputs(args)) or (None, None)
    with guard(comm, "reading the checkpoint and the data"):
        if args.resume:  # the saved dtype unless --dtype says otherwise; the saved model's kind
            saved = checkpoint.load(args.resume, spec, dtype=flags.dtype(args))
            continue_saved(args, saved)
            backend = saved.model.backend
        else:
            saved, backend = None, get_backend(spec, flags.dtype(args))
        resumed = saved.metadata.get("extra", {}) if saved else {}  # epochs done, seed, data info
        ranks = f", {comm.size} rank(s) over {comm.transport.name}" if comm else ""
        print(device_line(spec, backend) + ranks)
        data = prepare(args, resumed.get("data", AS_IT_IS if saved else None))
        model = saved.model if saved else build(args, data, backend)
        if saved:  # fit reads it again: what it continues must be what was checked
            _unchanged("--resume", args.resume, saved.metadata)
    if comm is not None:  # every rank must train on the same samples, or the steps differ
        comm.check_consistent(data=(data.X, data.y), validation=data.val)
    print(f"model: {model}")
    print(f"data: {data.name}, {len(data.X)} training / {len(data.val[0]) if data.val else 0} validation / "
          f"{len(data.test[0]) if data.test else 0} test samples")
    if data.info.get("target"):  # own data: what it learns, the default column too (price first, rooms last)
        print(target_line(data.info, given=bool(args.target or saved)))
    lr, schedule = DEFAULTS[args.model]
    optimizer = (saved.optimizer if args.optimizer is None else get_optimizer(args.optimizer)) if saved \
        else get_optimizer(args.optimizer or "adam", lr=args.lr or lr)
    extras = {"data": data.info, "run": {"schedule": args.schedule or schedule}}  # fit keeps the batch size
    t0 = time.perf_counter()
    root = comm is None or comm.is_root  # the one rank that writes files
    log = EpochLog(args.log, append=bool(args.resume), overwrite=args.overwrite) if args.log and root else None
    callbacks = [LogClaim(log, log_seen)] if log else []
    try:
        history = fit(model, data.X, data.y, loss=args.loss, optimizer=optimizer, lr=args.lr, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, schedule=args.schedule or schedule,
                      validation_data=data.val, patience=args.patience, restore_best=args.restore_best,
                      progress=False if args.quiet else None, callbacks=callbacks,
                      checkpoint_path=(claim or args.save) if args.checkpoint_every else None,  # fit writes as claimed
                      checkpoint_every=args.checkpoint_every, checkpoint_extra=extras,
                      resume_from=args.resume, comm=comm, cuda_graph=args.cuda_graph, overwrite=args.overwrite)
    except GpubpError as exc:  # out of memory, a disk full, ...: fit's whole epochs are saved before it is said
        raise kept_of(exc, args, model, optimizer, data.name, extras, resumed, root, claim) from None
    finally:
        if log:
            log.close()
    saved_line = None  # written before the report, so nothing printed or evaluated can lose it
    if args.save and root:
        saved_line = save_run(args, model, optimizer, history, data.name, extras, resumed, claim)
    kept = saved_line or "no --save: the model is not kept"
    try:
        report(args, model, data, history, time.perf_counter() - t0)
    except (GpubpError, MemoryError) as exc:
        raise GpubpError(f"the report after training failed ({describe(exc)}); {kept}") from None
    if saved_line:
        print(saved_line)
    if args.plot and history.loss and root:
        try:
            plot = plot_history(history, args.plot, title=f"{data.name}, {args.model}", overwrite=args.overwrite)
        except (GpubpError, MemoryError, OSError) as exc:
            raise GpubpError(f"--plot {args.plot}: {describe(exc)}; {kept}") from None
        print(f"plot: {plot}")
    return 130 if history.interrupted else 0


def _unchanged(flag, path, meta):
    """Refuse, before training, a checkpoint changed (another run wrote it) or gone since it was read."""
    try:
        now = checkpoint.read_metadata(path)
    except GpubpError as exc:
        raise CheckpointError(f"{flag} {path} cannot be read again since it was read ({exc}); nothing was "
                              f"trained") from None
    if now != meta:
        raise CheckpointError(f"{flag} {path} changed since it was read (another run wrote it?); nothing was "
                              f"trained: run again to continue what it holds now")


def _check_flags(args):
    """The flag combinations refused before any work (alike on every rank)."""
    if args.cuda_graph and args.distributed:  # refused alike on every rank, under the guard, not by fit on each alone
        raise InvalidValueError("--cuda-graph replays one process's whole step as one CUDA graph: not with --distributed")
    if args.checkpoint_every and not args.save:
        raise InvalidValueError("--checkpoint-every needs --save PATH, the checkpoint to write")
    if args.test and not args.data:
        raise InvalidValueError("--test goes with --data (the built-in datasets bring their own test split)")
    if args.test and flags.same_file(args.test, args.data):
        warnings.warn(f"--test {args.test} is also --data: its test scores are on samples trained on, not a test "
                      f"of new ones", GpubpWarning)
    if args.target and not args.data:
        raise InvalidValueError("--target names a column of --data (the built-in datasets have their labels)")
    if args.data and flags.given(args, "dataset"):
        raise InvalidValueError(f"--dataset {args.dataset} names built-in data, --data {args.data} your own: "
                                f"give one of them")


def _check_outputs(args):
    """Every output path (--save, --log, --plot) refused before any work; then (the Claim of --save,
    the signature of --log): what they hold now, which this run may replace."""
    if args.save:
        writable_target("--save", args.save)
    log = args.log and writable_target("--log", args.log)  # through a link, the file it names
    if args.plot:
        check_plot_path(args.plot, "--plot", overwrite=args.overwrite)
        pyplot()
    flags.distinct_files({"--save": args.save, "--log": args.log, "--plot": args.plot},
                         {"--data": args.data, "--test": args.test, "--resume": args.resume},
                         allowed={("--save", "--resume")})  # a run continued in place
    if args.save:
        _save_target(args.save)
    if log:  # a file there that is not an epoch log (someone's data) is kept unless --overwrite
        output_path("--log", log, is_epoch_log, "an epoch log", args.overwrite)
    if not args.overwrite and args.save:  # another run's work at an output is kept
        refuse_overwrite(args.save, args.resume, "--save", "--resume {path}", "--overwrite")
    if not args.overwrite and log and os.path.isfile(log) and os.path.getsize(log) and not args.resume:
        raise InvalidValueError(f"--log: {args.log} already holds another run's log, which this run would replace; "
                                f"it is kept: give another path, continue that run (--resume appends to it), or "
                                f"pass --overwrite to replace it")
    claim = Claim(os.path.abspath(args.save), "--save") if args.save else None  # ~ is the shell's to expand
    return claim, signature(args.log) if args.log else None


def _save_target(path):
    """--save refused before training as its writer would refuse it after it (``checkpoint.target``:
    a read-only file, a pipe or a device there; a file that is not a checkpoint ``distinct_files`` named)."""
    try:
        checkpoint.target(path)
    except InvalidValueError as exc:
        raise InvalidValueError(f"--save: {str(exc).removeprefix('checkpoint path: ')}") from None


def build(args, data, backend) -> Sequential:
    """The model for ``args``: an MLP, or the small CNN, sized by the data."""
    info = data.info
    n_out = len(info["classes"]) if info["classes"] else data.y.shape[1]
    if args.model == "mlp":
        return mlp(data.X.shape[1], args.hidden, n_out, args.activation, backend, seed=args.seed)
    c, h, w = info["shape"]
    if h < 4 or w < 4:
        raise InvalidValueError(f"--model cnn pools twice by 2, so it needs images of 4x4 pixels or more; "
                                f"{data.name} holds {h}x{w}")
    flat = 32 * (h // 4) * (w // 4)
    return Sequential([Conv2D(c, 16, 3, padding=1), ReLU(), MaxPool2D(2), Conv2D(16, 32, 3, padding=1), ReLU(),
                       MaxPool2D(2), Flatten(), Dense(flat, n_out)], backend=backend, seed=args.seed)


def report(args, model, data, history, seconds):
    if history.interrupted:
        print("interrupted: reporting the model as trained so far")
    scaled = " (of the standardised target)" if data.info.get("target_scaler") else ""
    loss = f"  final train loss{scaled}: {history.loss[-1]:.4g}" if history.loss else ""
    best = f"  (restored the best epoch, {history.best_epoch})" if args.restore_best and history.best_epoch else ""
    print(f"epochs: {history.epochs}{loss}" + (f"  ({history.stopped})" if history.stopped else "") + best)
    for name, part in (("validation", data.val), ("test", data.test)):
        if part is None:
            continue
        if scaled:  # in the target's own units, as predict gives them
            print(f"{name} loss: {raw_mse(model, part[0], in_target_units(part[1], data.info), data.info):.4f}")
            continue
        result = evaluate(model, *part, loss=args.loss)
        print(f"{name} " + "  ".join(f"{k}: {v:.4f}" for k, v in reversed(result.items())))
    print(f"time: {seconds:.2f} s")
