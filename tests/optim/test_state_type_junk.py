"""An optimizer state whose "type" is junk (found by fuzzing): a gpubp error naming it, not NumPy's
"truth value of an array is ambiguous" from comparing an array with the class name."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from helpers import stable_id


@pytest.mark.parametrize("kind", [np.array(["SGD", "SGD"]), np.ones(2, bool), None, 1], ids=stable_id)
def test_load_state_dict_type_must_be_the_class_name(kind):
    d = gpubp.SGD(0.1).state_dict()
    d["type"] = kind
    with pytest.raises(InvalidValueError, match="state is for .*this optimizer is SGD"):
        gpubp.SGD(0.1).load_state_dict(d, "cpu")
