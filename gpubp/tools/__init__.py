"""Tools built on the core, never imported by it: gradient checks, anomaly mode,
per-layer diagnostics and plots, the CPU/GPU parity report and the doctor.
They watch a model through the observer hook of :mod:`gpubp.network`."""
