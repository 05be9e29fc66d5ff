"""The state of an optimizer whose rate a schedule took to 0 loads back (optimizer.lr takes 0, so
state_dict() gives it). Was: load_state_dict and optimizer_from_state refused lr 0 as the constructor
does, and fit stopped at the checkpoint of the first epoch at rate 0 ("state does not fit the model")."""
import numpy as np

import gpubp
from gpubp.optim import Adam, SGD, optimizer_from_state
from gpubp.schedules import Cosine


def test_saved_state_at_rate_zero_loads_back():
    opt = SGD(lr=0.1, momentum=0.9)
    opt.lr = 0.0
    state = opt.state_dict()
    again = SGD()
    again.load_state_dict(state, "cpu")
    assert again.lr == 0.0 and optimizer_from_state(state, "cpu").lr == 0.0


def test_fit_checkpoints_and_resumes_a_run_whose_schedule_reaches_zero(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3)).astype(np.float32)
    y = X[:, :1] * 2
    path = tmp_path / "run.npz"
    model = gpubp.Sequential([gpubp.Dense(3, 1)], seed=0)
    history = gpubp.fit(model, X, y, loss="mse", epochs=4, optimizer=Adam(0.01), schedule=Cosine(0.01, 2),
                        checkpoint_path=path, checkpoint_every=1)
    assert history.lr[-1] == 0.0
    assert gpubp.checkpoint.load(path).optimizer.lr == 0.0
