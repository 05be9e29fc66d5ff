"""``gpubp evaluate MODEL DATA``: a saved model's loss and accuracy on a labelled CSV/.npz."""
from __future__ import annotations

import json
import math
import warnings

from ..errors import GpubpWarning
from ..train import evaluate
from . import args as flags
from .data_record import check_record
from .model_data import raw_mse, read_for_model
from .predict import load

HELP = "evaluate a saved model on a labelled CSV/.npz (read and scaled as in training): loss, accuracy"


def add_arguments(p):
    flags.add_saved_model(p, "a CSV with the features and the target column, or an .npz with X and y")
    p.add_argument("--target", metavar="COLUMN", type=flags.column,
                   help="the CSV's target column (default: the one the model was trained on)")
    p.add_argument("--json", action="store_true", help="print JSON (a value beyond float64, inf, as null)")


def run(args) -> int:
    model, info = load(args)
    X, y, _ = read_for_model(args.data, info, target=args.target, require_target=True)
    check_record(model, X, info, args.model)
    if info.get("target_scaler"):  # a regression on a standardised target: its loss in the target's units
        result = {"loss": raw_mse(model, X, y, info, args.batch_size)}
    else:
        result = evaluate(model, X, y, loss=info.get("loss", "softmax_cross_entropy"), batch_size=args.batch_size)
    result = {"samples": len(X), **result}
    beyond = [k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)]
    if beyond:
        warnings.warn(f"{', '.join(beyond)} passes the range of float64 numbers (inf): {args.data}'s targets lie so far "
                      f"from the model's outputs (1e154 or more apart) that their mean square does{'; JSON gives it as null' * args.json}",
                      GpubpWarning)
        result = {k: (None if k in beyond and args.json else v) for k, v in result.items()}  # JSON has no inf
    print(json.dumps(result) if args.json else "  ".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
                                                       for k, v in result.items()))
    return 0
