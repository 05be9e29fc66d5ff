"""What fit takes as callbacks (objects with on_epoch_begin, on_batch_end, on_epoch_end) is refused by
what it was: a dict of hooks with the object that makes it, an object whose hooks fit never calls by
their names (a misspelt one, another library's on_train_end)."""
import numpy as np
import pytest

import gpubp


def _fit(callbacks):
    rng = np.random.default_rng(0)
    gpubp.fit(gpubp.Sequential([gpubp.Dense(4, 3)], seed=0), rng.normal(size=(8, 4)), rng.integers(0, 3, 8),
              epochs=1, progress=False, callbacks=callbacks)


def test_a_dict_of_hooks_is_told_the_object_that_makes_it():
    """Was: 'fit: callbacks[0] (a str) has none of the methods ...': the dict's keys taken as callbacks."""
    with pytest.raises(gpubp.InvalidValueError, match=r"fit: callbacks is a dict; callbacks are objects with any of "
                                                      r"the methods .*types.SimpleNamespace\(\*\*callbacks\)"):
        _fit({"on_epoch_end": lambda epoch, model, history: None})


class Misspelt:
    def on_epoch_ends(self, epoch, model, history):
        pass

    def on_train_end(self):
        pass


@pytest.mark.parametrize("given", [Misspelt(), [Misspelt()]], ids=["one", "list"])
def test_hooks_fit_never_calls_are_named(given):
    """Was: 'got a Misspelt' (or 'callbacks[0] (a Misspelt) has none of the methods ...') alone."""
    with pytest.raises(gpubp.InvalidValueError, match=r"has on_epoch_ends, on_train_end, which fit never calls"):
        _fit(given)
