"""A direct ``comm.allreduce_gradients_`` whose ranks pass unlike gradients (names, shapes, dtype,
buckets) is refused on every rank with the same MismatchError naming the first difference, nothing
summed; alike ranks agree once per layout (one small all-reduce) and then sum with no collective of
their own per call, and fit (whose step guard agrees on the layout) runs none. Was: summed without a
word where the sizes matched (rank 1's (2, 4) weights added to rank 0's (5, 2)), MPI_ERR_TRUNCATE on
one rank and garbage on the other where they did not. Runs ``worker_gradient_agreement.py``."""
import pytest

from test_mpi_world import records


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    return records("worker_gradient_agreement.py", out=tmp_path_factory.mktemp("agreement"))


@pytest.mark.parametrize("case, words", [
    ("same size, other shapes", "gradients 0.W: (5, 2) on rank 0, (2, 4) on rank 1"),
    ("other sizes", "gradients 0.W: (4, 3) on rank 0, (3, 4) on rank 1"),
    ("other dtype", "dtype: 'float64' on rank 0, 'float32' on rank 1"),
    ("other bucket_bytes", "bucket elements: 524288 on rank 0, 8 on rank 1"),
    ("changed later", "gradients 0.W: (4, 6) on rank 0, (4, 5) on rank 1"),
])
def test_unlike_gradients_are_refused_on_every_rank(seen, case, words):
    errors = {tuple(rank[case]["error"]) for rank in seen}
    assert len(errors) == 1, errors  # the same error on every rank
    kind, message = errors.pop()
    assert kind == "MismatchError", message
    assert message.startswith("allreduce_gradients_: rank 1 of 2 passes a model of other gradients than rank 0: "
                              + words), message
    assert message.endswith("nothing was summed"), message
    assert all(rank[case]["kept"] for rank in seen)  # the gradients as they were


def test_a_first_call_refused_on_one_rank_is_refused_on_every_rank(seen):
    """Was: rank 1 raised alone while rank 0 summed, waiting for it."""
    errors = {tuple(rank["refused on rank 1"]["error"]) for rank in seen}
    assert errors == {("RankFailure", "rank 1 of 2 failed during the call of allreduce_gradients_: InvalidValueError: "
                                      "allreduce_gradients_: scaled must be True or False, got 'yes'; every rank "
                                      "stopped")}, errors
    assert all(rank["refused on rank 1"]["kept"] for rank in seen)


def test_alike_ranks_agree_once_per_layout_then_only_sum(seen):
    for rank in seen:
        alike = rank["alike"]
        assert alike["errors"] == ["none"] * 6
        assert alike["agreements"] == 1  # six calls, one new flat buffer of the same layout: agreed once
        assert alike["bucket sums"] == 6  # one bucket a call, no other collective of the call's own
        assert alike["W"] == 1.5  # (1 + 2) / 2, then the mean of 1.5 on both ranks: summed alike
        assert rank["changed later"]["agreements"] == 2  # a new layout is agreed again


def test_fit_runs_no_agreement_of_its_own(seen):
    assert all(rank["fit"]["agreements"] == 0 for rank in seen)
