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


TEXT = " ".join((ROOT / "README.md").read_text().split())  # prose with its line breaks made spaces


def test_the_history_fields_the_readme_names_exist():
    """The README lists what fit's History holds: every name it gives is a field of History."""
    import dataclasses
    from gpubp.history import History

    listed = re.search(r"It returns a `History` \((.*?)\), shows", TEXT)[1]
    names = set(re.findall(r"`(\w+)`", listed))
    assert {"loss", "metric", "val_loss", "stopped", "interrupted"} <= names
    assert names <= {f.name for f in dataclasses.fields(History)}


def test_the_speed_figures_are_those_of_the_committed_benchmark_files():
    """The planned step's and the LeNet step's ratios to PyTorch that the README states are the
    least and the most over the committed 2026-12-03 CPU records."""
    import json

    records = [json.loads(p.read_text()) for p in sorted((ROOT / "benchmarks/results").glob("2026-12-03-cpu-*.json"))]
    mlp = [row for r in records for row in r.get("mlp", [])]
    for config in "abc":
        ratios = [row["ratio_gpubp_planned_over_torch"] for row in mlp
                  if row["config"] == config and "ratio_gpubp_planned_over_torch" in row]
        assert len(ratios) >= 3
        assert f"{min(ratios):.2f}-{max(ratios):.2f}x" in TEXT, config
    lenet = [row[k] for r in records for row in r.get("conv", [])
             for k in ("ratio_gpubp_over_torch", "ratio_gpubp_planned_over_torch") if k in row]
    span = f"{min(lenet):.2f}-{max(lenet):.2f}x PyTorch's"
    assert TEXT.count(span) == 2  # the Speed and the Images sections


def test_the_layout_names_every_part_of_the_package():
    """Every module and folder directly under gpubp/ appears in the README's tree."""
    tree = re.search(r"## Layout\n.*?```\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[1]
    parts = [p.name for p in (ROOT / "gpubp").iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
             and p.name not in ("__init__.py", "__main__.py")]
    missing = [name for name in parts if name not in tree]
    assert not missing, missing


def test_the_delta_rule_example_updates_every_parameter_in_one_kernel(tmp_path, monkeypatch):
    """Its comment says `opt.step(model)` is one fused update kernel for all parameters."""
    monkeypatch.setenv("GPUBP_DEVICE", "cpu")
    namespace = {}
    run(BLOCKS[0], namespace)
    assert "one fused update kernel for all parameters" in BLOCKS[0]
    updates = namespace["opt"].prepared(namespace["model"])
    assert len(updates.runs) == 1 and len(namespace["model"].parameters()) == 4


def test_the_vanishing_gradient_is_about_six_orders_of_magnitude():
    """`gpubp vanishing`'s run (10 sigmoid layers of 32 at initialisation): the sigmoid net's
    first-layer ||dW|| is about 1e-6 of its last layer's and of the ReLU net's first layer's."""
    import math
    from gpubp.tools.diagnostics import vanishing_experiment

    assert "first-layer gradient is about six orders of magnitude smaller" in TEXT
    result = vanishing_experiment(backend="cpu")
    first_sigmoid, first_relu = result["sigmoid"].dW_norms[0][0], result["relu"].dW_norms[0][0]
    for ratio in (result["ratio"]["sigmoid"], first_sigmoid / first_relu):
        assert 5.5 <= -math.log10(ratio) <= 7.0, ratio
