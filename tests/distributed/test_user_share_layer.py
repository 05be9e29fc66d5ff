"""A user's layer takes a share of each global batch as Dropout and BatchNorm do (nn/share.py:
``takes_share = True``, ``share``, ``idle_forward``/``idle_backward``): 3 ranks, some holding no
sample of a step, train as one process. One that says ``takes_share = True`` without the idle
methods is refused at the run's first step, naming the layer and what it lacks. (Was: an
AttributeError from inside fit, 'Centre' object has no attribute 'idle_forward', at the first step
that left a rank without samples: here the last of the first epoch, after the epoch's other steps
had run.) Runs ``worker_user_share.py`` under mpiexec."""

from test_mpi_world import launch, one_error, records


def run(tmp_path, case, n=3):
    return records("worker_user_share.py", case, out=tmp_path, n=n)


def test_a_users_layer_taking_a_share_trains_as_one_process(tmp_path):
    seen = run(tmp_path, "centre")
    assert all(s["error"] == ["none", ""] for s in seen), [s["error"] for s in seen]
    assert all(s["params"] == seen[0]["params"] for s in seen)
    assert max(s["single"] for s in seen) <= 1e-12, [s["single"] for s in seen]
    assert sorted(s["idle"] for s in seen) == [0, 2, 2]  # two ranks idle at each epoch's last step


def test_a_layer_taking_a_share_without_idle_methods_is_refused_at_the_first_step(tmp_path):
    seen = run(tmp_path, "no-idle")
    kind, message = one_error(seen)
    assert kind == "InvalidValueError", message  # raised by every rank alike: the error itself, as one process
    assert "layer 1 NoIdle says takes_share = True but has no callable idle_forward, idle_backward" in message, message
    assert "AttributeError" not in message and "TypeError" not in message, message


def test_a_rank_that_cannot_join_the_rest_of_a_step_s_sums_ends_every_rank(tmp_path):
    """Rank 1 fails inside a step, and its layer's idle_forward, which would join the sums the other
    ranks wait in, fails too: every rank is aborted, saying why (was: the other ranks hung)."""
    code, output, seconds = launch("worker_user_share.py", "idle-fails", tmp_path, n=3, timeout=90)
    assert code != 0 and seconds < 60, output[-3000:]
    assert "rank 1 of 3: a step failed here after 0 of its layers' sums over the ranks, and joining the rest failed " \
           "too (RuntimeError: its idle step broke too)" in output and "aborting every rank" in output, output[-3000:]
    assert not list(tmp_path.glob("rank*.json"))  # no rank returned

