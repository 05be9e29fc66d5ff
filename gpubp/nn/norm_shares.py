"""BatchNorm under data parallelism (``SharedStatistics``, a base of ``BatchNorm``): its statistics
summed over the ranks' shares of a global batch (``nn/share.py``), and the idle steps of a rank that
holds no sample of a step's batch but must still take its part of those sums.

Under a ``share`` in training mu, var and the m values per channel are the global batch's::

    mu = (sum X) / m,  var = (sum (X - mu)^2) / m,  m = sum of the shares' N (H W)

each sum over every share, as are the backward's dbeta and dgamma (``BatchNorm._backward``).
"""
from __future__ import annotations

import math

from . import running
from .batch_statistics import axes_of, statistics


class SharedStatistics:
    """A BatchNorm's statistics of a batch or of a global batch's shares, and its idle steps."""

    def _batch_statistics(self, X, work, axes, shape):
        """The batch's mu and (biased) var in X's dtype, 1 / sigma into ``work.inv_sigma``, and the
        values per channel they are over (``batch_statistics.statistics``): the global batch's,
        summed over the shares, under a ``share`` in training."""
        shared = self._shared()
        mu, var, self.values = statistics(self.backend.xp, X, work, axes, shape, self.eps,
                                          self.share.sum_ if shared else None,
                                          None if shared else self._values(X.shape))
        return mu, var

    def _shared(self) -> bool:
        """Whether this step's statistics are summed over the shares of a global batch (in training)."""
        return self.share is not None and self.share.sum_ is not None and self.training

    def _values(self, shape) -> int:
        """The values per channel of the statistics over a batch of ``shape``: the global batch's under
        a share (in training), summed or not (a step plan's dry run sums nothing)."""
        per_sample = math.prod(shape[2:])
        return (self.share.total if self.share is not None and self.training else shape[0]) * per_sample

    def idle_forward(self):
        """A training step whose batch this process holds no sample of: its part of the statistics'
        sums (zeros), and the running estimates moved by the global batch's, as on every process."""
        if not self._shared():
            return
        C = self.num_features
        X = self.backend.zeros((0, C))
        work = self._work(X.shape, X.dtype)
        self.batch_stats = True
        mu, var = self._batch_statistics(X, work, *axes_of(X))
        if self.track_running_stats:
            running.update(self.backend.xp, self.buffers, mu, var, self.values, self.momentum, work)
        self.X = self.x_hat = None

    def idle_backward(self):
        """Its part of the backward's sums (zeros): the processes that hold samples wait for it."""
        if self._shared():
            work = self._work((0, self.num_features), self.backend.dtype)
            work.dbeta.fill(0)
            work.dgamma.fill(0)
            self.share.sum_([work.dbeta, work.dgamma])
