"""CPU/GPU parity: train one model on two backends in lockstep and name where they part
(``run``), the report of what was found (``report``), the precision policy that judges
it, TF32 included (``tolerance``), and the size of the terms each quantity sums (``terms``)."""
from .report import Entry, ParityReport
from .run import Perturbation, copy_model, parity, resolve_backend

__all__ = ["parity", "Perturbation", "Entry", "ParityReport", "resolve_backend", "copy_model"]
