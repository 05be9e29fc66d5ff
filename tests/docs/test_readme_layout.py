"""The README's layout tree names every module inside gpubp's folders, in the entry of its folder
(test_readme.py checks the modules and folders directly under gpubp/). Left out on purpose: each
folder's ``__init__``, gpubp/bench/ (a leaf, named as a whole) and the subcommand modules of
gpubp/cli/ ("one module per subcommand")."""
import re

from gpubp.cli import COMMANDS
from helpers import ROOT

TREE = re.search(r"## Layout\n.*?```\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[1]


def entries(tree):
    """{folder such as 'gpubp/nn/': the text of its entry} for the tree's folder entries."""
    found, key = {}, None
    for line in tree.splitlines():
        if line and not line[0].isspace():
            key = line.split()[0].rstrip(",")
            found[key] = ""
        found[key] += " " + line
    return {k: v for k, v in found.items() if k.endswith("/")}


def unnamed(tree, modules):
    """The modules (paths under gpubp/, as strings) whose folder's entry does not name them."""
    folders = entries(tree)
    missing = []
    for module in modules:
        parts = module.split("/")
        prefixes = ["/".join(parts[:i]) + "/" for i in range(len(parts) - 1, 1, -1)]
        folder = next((p for p in prefixes if p in folders), None)
        stem = parts[-1][:-3]
        if folder is None or not re.search(rf"(?<![\w.]){re.escape(stem)}\b", folders[folder]):
            missing.append(module)
    return missing


def modules():
    skip = {f"gpubp/cli/{name}.py" for name in COMMANDS}
    return [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "gpubp").glob("*/**/*.py"))
            if p.name != "__init__.py" and p.parts[-2] != "__pycache__"
            and not p.relative_to(ROOT).as_posix().startswith("gpubp/bench/")
            and p.relative_to(ROOT).as_posix() not in skip]


def test_every_module_in_a_folder_is_named_in_its_folders_entry():
    assert len(modules()) > 50
    assert not unnamed(TREE, modules())


def test_a_module_left_out_of_its_entry_is_found():
    tree = "gpubp/train/   fit.py (the run), epoch.py\ngpubp/tools/   anomaly.py, parity/ (run, report)\n"
    assert unnamed(tree, ["gpubp/train/fit.py", "gpubp/train/epoch.py", "gpubp/tools/parity/run.py"]) == []
    assert unnamed(tree, ["gpubp/train/interrupts.py", "gpubp/tools/parity/terms.py",
                          "gpubp/plan/step.py"]) == ["gpubp/train/interrupts.py", "gpubp/tools/parity/terms.py",
                                                     "gpubp/plan/step.py"]
