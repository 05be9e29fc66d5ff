"""Training: ``fit`` (fit.py: the run, its settings in settings.py, its own arguments checked in
arguments.py, how it ends in ending.py; epoch.py: one epoch's batches and steps, data-parallel with a
communicator, the ranks' shares in shares.py), ``evaluate`` and ``predict`` (evaluation.py), the checks of what they are given
(inputs.py), the guard that no non-finite state leaves fit (state.py), resume state (resume.py), and
Ctrl-C taken between steps, never inside one (interrupts.py).
"""
from .evaluation import evaluate, predict
from .epoch import epoch_order
from .fit import fit
from .resume import save_training

__all__ = ["fit", "evaluate", "predict", "save_training", "epoch_order"]
