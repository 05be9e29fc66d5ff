"""What ported PyTorch code does with an optimizer gets a gpubp error saying what to do. Was: a bare
AttributeError for opt.zero_grad() and opt.param_groups, a TypeError for opt.step() ("missing ...
'model'"), for opt.step(model, closure), for AdamW(decoupled_weight_decay=False) ("multiple values"),
for parameters given as dict values (SGD(model.parameters().values(), lr=0.1)), for load_state_dict(d)
without a backend, and "state is for None" for a PyTorch optimizer's state_dict; a KeyError for a model
whose gradients() lacks a parameter, an AttributeError for one whose backend is not a Backend."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.optim import SGD, Adam, AdamW, get_optimizer, optimizer_from_state


def model():
    m = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0)
    for g in m.gradients().values():
        g[...] = 1
    return m


@pytest.mark.parametrize("name, words", [
    ("zero_grad", r"model.zero_grad\(\)"), ("param_groups", r"optimizer.lr and optimizer.hyper"),
    ("add_param_group", "one optimizer steps one whole model"), ("defaults", r"optimizer.hyper")])
def test_a_pytorch_optimizer_name_says_where_gpubp_keeps_it(name, words):
    with pytest.raises(AttributeError, match=rf"no attribute '{name}' \(PyTorch's name; in gpubp: {words}"):
        getattr(SGD(0.1), name)
    with pytest.raises(AttributeError, match=r"no attribute 'nothing'$"):
        SGD(0.1).nothing  # noqa: B018


def test_step_without_the_model_is_named_and_a_closure_runs_first():
    with pytest.raises(InvalidValueError, match=r"got a NoneType None; call optimizer.step\(model\), or "):
        SGD(0.1).step()
    calls = []
    with pytest.raises(InvalidValueError, match=r"got a function .*optimizer.step\(model, closure\)"):
        SGD(0.1).step(lambda: calls.append(1))
    with pytest.raises(InvalidValueError, match=r"got a NoneType None; call optimizer.step\(model\)"):
        SGD(0.1).step(closure=lambda: calls.append(1))
    assert calls == []
    m = model()
    W = m.parameters()["0.W"].copy()
    assert SGD(0.1).step(m, lambda: calls.append(1) or 2.5) == 2.5 and calls == [1]
    np.testing.assert_allclose(m.parameters()["0.W"], W - 0.1)
    assert SGD(0.1).step(m) is None


@pytest.mark.parametrize("make", [lambda: AdamW(decoupled_weight_decay=False),
                                  lambda: get_optimizer("adamw", decoupled_weight_decay=False)])
def test_adamw_coupled_is_pointed_to_adam(make):
    with pytest.raises(InvalidValueError, match=r"use Adam\(weight_decay=..., decoupled_weight_decay=False\)"):
        make()
    assert AdamW(decoupled_weight_decay=True).hyper["weight_decay"] == 0.01


@pytest.mark.parametrize("params", [lambda m: m.parameters().values(), lambda m: set(m.parameters()),
                                    lambda m: map(id, m.parameters().values())])
@pytest.mark.parametrize("make", [SGD, Adam, AdamW])
def test_parameters_in_any_collection_are_refused_as_pytorch_s_first_argument(params, make):
    with pytest.raises(InvalidValueError, match=rf"{make.__name__} takes no parameters"):
        make(params(model()), lr=0.1)


def test_state_loads_without_a_backend_and_a_pytorch_state_dict_is_named():
    m, opt = model(), Adam(0.1)
    opt.step(m)
    again = Adam()
    again.load_state_dict(opt.state_dict())
    assert again.t == 1 and optimizer_from_state(opt.state_dict()).t == 1
    again.step(m)
    torch_like = {"state": {0: {"step": 1}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    with pytest.raises(InvalidValueError, match="a PyTorch optimizer's state_dict"):
        Adam().load_state_dict(torch_like)
    with pytest.raises(InvalidValueError, match="a PyTorch optimizer's state_dict"):
        optimizer_from_state(torch_like)


class Own:
    """A model of one's own: backend, parameters(), gradients()."""

    def __init__(self, grads=True, backend=None):
        self.backend = backend or gpubp.get_backend("cpu", "float32")
        self.p = {"w": np.ones(3, np.float32)}
        self.g = {"w": np.ones(3, np.float32)} if grads else {}

    def parameters(self):
        return self.p

    def gradients(self):
        return self.g


def test_a_model_of_one_s_own_without_a_gradient_or_a_backend_is_named():
    with pytest.raises(InvalidValueError, match=r"no gradient for its parameters \['w'\]"):
        SGD(0.1).step(Own(grads=False))
    with pytest.raises(InvalidValueError, match="whose backend is 'cpu'"):
        SGD(0.1).step(Own(backend="cpu"))
    own = Own()
    SGD(0.5).step(own)
    np.testing.assert_array_equal(own.p["w"], 0.5)


def test_arguments_given_with_an_optimizer_instance_are_refused_not_ignored():
    # was: get_optimizer(Adam(), lr=0.5) returned the Adam at lr 0.001, the 0.5 dropped silently
    opt = Adam()
    with pytest.raises(InvalidValueError, match=r"get_optimizer: got Adam\(lr=0.001.*the arguments \['lr'\]"):
        get_optimizer(opt, lr=0.5)
    assert get_optimizer(opt) is opt and get_optimizer("adam", lr=0.5).lr == 0.5
