"""The README's Python examples run as written (on the CPU): each alone, in a fresh namespace
and folder (a reader copies one), and all in order in one namespace."""
import os
import re

import pytest

from helpers import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def run(block, namespace):
    exec(compile(block, "README.md", "exec"), namespace)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_readme_example_runs_alone(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the training example writes run.npz
    monkeypatch.setenv("GPUBP_DEVICE", "cpu")
    run(BLOCKS[index], {})


def test_readme_examples_run_in_order_and_say_what_they_claim(tmp_path, monkeypatch, capsys):
    assert len(BLOCKS) >= 5
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GPUBP_DEVICE", "cpu")
    namespace = {}
    for block in BLOCKS:
        run(block, namespace)
    out = capsys.readouterr().out
    assert "[False  True  True False]" in out  # the delta-rule example learns XOR
    assert "accuracy" in out and "gradient check" in out and "(output)" in out
    assert namespace["report"].ok and os.path.exists(tmp_path / "run.npz")
