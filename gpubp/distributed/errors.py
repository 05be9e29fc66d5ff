"""The errors of a distributed run. Both are raised on *every* rank with the same message
(``everywhere = True``), so no rank is left waiting in a collective for one that stopped."""
from __future__ import annotations

from ..errors import GpubpError


class DistributedError(GpubpError, RuntimeError):
    """A distributed run cannot go on (MPI missing, ranks that disagree, a rank that failed)."""

    everywhere = False  # True: every rank raises this same error at the same point


class RankFailure(DistributedError):
    """Rank ``rank`` (the lowest of ``ranks`` that failed) raised inside a guarded section."""

    everywhere = True

    def __init__(self, message, rank, ranks):
        super().__init__(message)
        self.rank, self.ranks = rank, list(ranks)


class MismatchError(DistributedError):
    """Rank ``rank`` runs other versions, another device kind or another model than rank 0."""

    everywhere = True

    def __init__(self, message, rank, fields):
        super().__init__(message)
        self.rank, self.fields = rank, list(fields)
