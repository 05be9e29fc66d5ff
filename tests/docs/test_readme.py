"""The README's Python examples run as written (on the CPU), in order, in one namespace."""
import os
import re

from helpers import ROOT


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    with open(ROOT / "README.md") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the training example writes run.npz
    monkeypatch.setenv("GPUBP_DEVICE", "cpu")
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "[False  True  True False]" in out  # the delta-rule example learns XOR
    assert "accuracy" in out and "gradient check" in out
    assert namespace["report"].ok and os.path.exists(tmp_path / "run.npz")
