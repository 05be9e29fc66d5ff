"""BatchNorm on images (N, C, H, W) and Dropout under data parallelism, 2 and 3 ranks against one
process (``worker_bn_images.py``, one mpiexec launch per rank count): every option of BatchNorm2d
(momentum=None, affine=False, track_running_stats=False, whose validation normalises by each
batch's statistics), Dropout after it, float32 within the parity policy, a last global batch of one
image (the other ranks idle), restore_best putting back an earlier epoch with its running estimates
and Dropout step, and a callback putting the model in eval mode mid-epoch (fit puts it back, on
every rank alike). Each case: the same parameters and buffers as the single process (float64
1e-12 norm-wise, float32 the policy's rtol), identical bytes on every rank, the same history."""
import json

import numpy as np
import pytest

from gpubp.tools.parity.tolerance import POLICY
from test_mpi_world import launch, ranks

CASES = ["images", "cumulative-no-affine", "no-running-stats", "dropout", "float32", "last-image-alone",
         "restore-best", "eval-callback"]


@pytest.fixture(scope="module", params=[2, 3], ids=["2-ranks", "3-ranks"])
def seen(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"bn_images_{request.param}")
    code, output, _ = launch("worker_bn_images.py", out, n=request.param, timeout=180)
    assert code == 0, output[-4000:]
    return ranks(out, request.param)


@pytest.mark.parametrize("case", CASES)
def test_batchnorm_on_images_trains_on_ranks_as_in_one_process(seen, case):
    results = [s[case] for s in seen]
    first = results[0]
    assert first["single_error"] is None and all(r["error"] is None for r in results), \
        [(first["single_error"], r["error"]) for r in results]
    rtol = POLICY[np.dtype("float32")].rtol if case == "float32" else 1e-12
    assert max(r["worst"] for r in results) <= rtol, [r["worst"] for r in results]
    assert len({r["digest"] for r in results}) == 1  # every rank holds the same bytes
    for r in results:
        for got, want in zip(r["history"], r["single_history"]):
            np.testing.assert_allclose(got, want, rtol=max(rtol, 1e-12))


def test_restore_best_puts_back_the_same_earlier_epoch(seen):
    results = [s["restore-best"] for s in seen]
    assert {r["best_epoch"] for r in results} == {results[0]["single_best_epoch"]}
    assert results[0]["best_epoch"] < 4  # the validation loss rose after it: an earlier epoch put back


def test_a_callback_left_eval_mode_trains_as_without_it_on_every_rank(seen):
    for s in seen:
        assert s["eval-callback"]["digest"] == s["dropout"]["digest"]  # the model put back in training each time
        assert any(w.startswith("fit: a callback left the model in eval mode") for w in s["eval-callback"]["warnings"])
