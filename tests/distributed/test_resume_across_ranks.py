"""A data-parallel run's checkpoint is the single-process run's: resumed on another number of
ranks (2 -> 1, 1 -> 2) it continues as if never stopped (float64 within 1e-12, the reduction
order being the only difference), and a rank killed while writing it leaves the last whole
checkpoint, which the next run resumes from (the killed write's temp file removed)."""
import json
import shutil

import numpy as np
import pytest

import gpubp
from test_mpi_world import launch
from worker_resume import problem

EPOCHS = 4


def fit_here(out, epochs, resume=None, path="one.npz"):
    model, X, y, kwargs = problem()
    gpubp.fit(model, X, y, epochs=epochs, checkpoint_path=str(out / path), checkpoint_every=1,
              resume_from=None if resume is None else str(resume), **kwargs)
    return {k: v for k, v in model.parameters().items()}


def assert_close(a, b):
    assert a.keys() == b.keys()
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert np.linalg.norm(x - y) <= 1e-12 * np.linalg.norm(y), name


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return fit_here(tmp_path_factory.mktemp("whole"), EPOCHS)


def ranks_params(out):
    return json.loads((out / "params.json").read_text())


def test_two_ranks_then_one_process_is_one_run(tmp_path, uninterrupted):
    code, output, _ = launch("worker_resume.py", "train", tmp_path, 2)
    assert code == 0, output[-3000:]
    assert gpubp.checkpoint.read_metadata(tmp_path / "ranks.npz")["extra"]["epochs_done"] == 2
    assert_close(fit_here(tmp_path, EPOCHS, resume=tmp_path / "ranks.npz"), uninterrupted)


def test_one_process_then_two_ranks_is_one_run(tmp_path, uninterrupted):
    fit_here(tmp_path, 2)
    shutil.copy(tmp_path / "one.npz", tmp_path / "resume.npz")
    code, output, _ = launch("worker_resume.py", "train", tmp_path, EPOCHS, "resume")
    assert code == 0, output[-3000:]
    assert_close(ranks_params(tmp_path), uninterrupted)


def test_a_rank_killed_while_saving_leaves_the_last_whole_checkpoint(tmp_path, uninterrupted):
    code, output, seconds = launch("worker_resume.py", "kill", tmp_path, timeout=60)
    assert code != 0 and seconds < 30, output[-3000:]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the killed write's temp file
    with pytest.warns(gpubp.GpubpWarning, match=r"the lock left by process \d+ .*which ended without releasing it"):
        assert gpubp.checkpoint.read_metadata(tmp_path / "ranks.npz")["extra"]["epochs_done"] == 1  # lock removed
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # with the killed write's temp file
    resumed = fit_here(tmp_path, EPOCHS, resume=tmp_path / "ranks.npz", path="ranks.npz")
    assert_close(resumed, uninterrupted)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".gpubp-lock")]


def test_the_last_checkpoint_failing_on_rank_0_stops_every_rank(tmp_path):
    """Was: rank 0 raised while the other ranks returned from fit as if all were well."""
    code, output, seconds = launch("worker_resume.py", "last-fails", tmp_path, timeout=60)
    assert code == 0 and seconds < 30, output[-3000:]
    seen = [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]
    assert seen[0] == seen[1], seen
    assert seen[0].startswith("RankFailure: rank 0 of 2 failed during writing the checkpoint of the model returned: "
                              "CheckpointError: fit: cannot write the checkpoint of epoch 3"), seen[0]
    assert "No space left on device" in seen[0] and "ranks.npz keeps the checkpoint of epoch 2" in seen[0]
    assert gpubp.checkpoint.read_metadata(tmp_path / "ranks.npz")["extra"]["epochs_done"] == 2  # kept whole
