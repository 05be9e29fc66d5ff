"""The tree is the architecture: imports point one way (cli -> tools -> core -> backend; inside
the core's model-building part, network -> losses -> nn), and no intra-package import hides
inside a function (a hidden import hides a cycle)."""
import ast

import pytest

from helpers import ROOT

PACKAGE = ROOT / "gpubp"
LEAVES = ("tools", "cli", "bench")  # built on the core; the core never imports them
FRONT = ("__init__.py", "__main__.py")  # the package front re-exports tools for users
# the lazy intra-package imports: CuPy's backend, only once a GPU is asked for, and MPI's world
LAZY_ALLOWED = {("backend/__init__.py", "gpubp.backend.cupy_backend"),
                # importing it starts MPI: only `gpubp train --distributed` may
                ("cli/train.py", "gpubp.distributed.mpi")}
OPTIONAL = ("cupy", "matplotlib", "torch")  # optional dependencies, imported where used
MODEL_PARTS = ("nn", "losses", "network")  # bottom up: each may import those before it, none after it


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def imported(path, node):
    """The absolute module names an import node brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = path.relative_to(ROOT).parent.parts
        base = package[:len(package) - node.level + 1]
        prefix = ".".join(base + ((node.module,) if node.module else ()))
    else:
        prefix = node.module
    return [prefix] + [f"{prefix}.{a.name}" for a in node.names]


def imports_of(path):
    """Every absolute module name ``path`` imports, anywhere in it."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from imported(path, node)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_never_imports_tools_cli_or_bench(path):
    rel = path.relative_to(PACKAGE)
    if rel.parts[0] in LEAVES or str(rel) in FRONT:
        return
    for name in imports_of(path):
        assert not name.startswith(tuple(f"gpubp.{leaf}" for leaf in LEAVES)), \
            f"{rel} imports {name}: the core must not reach up into {LEAVES}"


@pytest.mark.parametrize("part", MODEL_PARTS)
def test_the_model_parts_import_only_downward(part):
    """Layers know nothing of losses or models, losses nothing of models."""
    above = tuple(f"gpubp.{later}" for later in MODEL_PARTS[MODEL_PARTS.index(part) + 1:])
    for path in sorted((PACKAGE / part).rglob("*.py")):
        for name in imports_of(path):
            assert not (above and name.startswith(above)), \
                f"{path.relative_to(PACKAGE)} imports {name}: {part} must not reach up into {above}"


def test_the_model_packages_keep_their_import_paths():
    """Users and the rest of gpubp import from the package fronts, whatever module holds the code."""
    from gpubp.losses import LOSSES, MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy, get_loss
    from gpubp.network import Sequential, mlp, observing
    from gpubp.nn import LAYERS, Dense, Layer, layer_from_config

    assert {LOSSES["mse"], LOSSES["bce"], LOSSES["cross_entropy"]} == {MSE, BinaryCrossEntropy, SoftmaxCrossEntropy}
    assert isinstance(get_loss("mse"), Loss) and LAYERS["Dense"] is Dense and issubclass(Dense, Layer)
    assert all(map(callable, (Sequential, mlp, observing, layer_from_config)))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_hides_inside_a_function(path):
    rel = str(path.relative_to(PACKAGE))
    for fn in ast.walk(ast.parse(path.read_text())):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = imported(path, node)
                if names[0].split(".")[0] in OPTIONAL or (rel, names[0]) in LAZY_ALLOWED:
                    continue
                pytest.fail(f"{rel}:{node.lineno} imports {names[0]} inside {fn.name}(); import it at the top")


def test_the_checker_sees_a_reaching_import():
    """The walk above resolves relative imports: a core module reaching into tools is named."""
    fake = PACKAGE / "train.py"
    node = ast.parse("from .tools.parity import parity").body[0]
    assert "gpubp.tools.parity" in imported(fake, node)
    node = ast.parse("from ..errors import GpubpError").body[0]
    assert "gpubp.errors" in imported(PACKAGE / "tools" / "plot.py", node)
