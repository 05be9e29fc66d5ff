"""Whole command-line journeys, each step taken as a careless user would: a mistake made in one
command must be named by gpubp (or warned of) there, not turn into a silent wrong answer later."""
import csv

import numpy as np
import pytest

import gpubp
from gpubp.cli import main
from helpers import ROOT

IRIS = ROOT / "tests" / "data" / "iris.csv"


@pytest.mark.parametrize("command", [["train", "--epochs", "1", "--quiet"], ["gradcheck"]])
def test_a_junk_gpubp_device_is_named_as_the_variable(monkeypatch, capsys, command):
    """Was: `GPUBP_DEVICE=junk gpubp train` said only "unknown device 'junk'", a value the user never
    typed in the command; the error now names the variable it came from (Python's default device too)."""
    monkeypatch.setenv("GPUBP_DEVICE", "junk")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "GPUBP_DEVICE='junk'" in err and "unknown device" in err and "Traceback" not in err
    with pytest.raises(gpubp.DeviceError, match="GPUBP_DEVICE='junk'"):
        gpubp.mlp(2, [2], 2)
    monkeypatch.setenv("GPUBP_DEVICE", "cpu/float16")
    with pytest.raises(gpubp.DTypeError, match="GPUBP_DEVICE='cpu/float16'.*float16"):
        gpubp.get_backend()
