"""relaybit as a real package: the wheel and the sdist, installed and run.

``python -m build`` makes the sdist, then the wheel from the sdist (so a file
missing from the sdist breaks the wheel); ``twine check`` accepts both. The
wheel must carry ``py.typed`` and every module of ``src/relaybit``. It is then
installed into a fresh virtualenv, not editable, and run from there:
``relaybit --version``, ``relaybit --dry-run`` on the examples (one per folder and
the top folder's YAML files), and
``relaybit --demo --seconds 3``.

To stay fast the build does not make an isolated environment
(``--no-isolation``: hatchling comes with the test extra) and the fresh
virtualenv gets no copies of the dependencies: it is made without pip, a
``.pth`` file lends it the test virtualenv's site-packages (msgpack, uvloop,
aiohttp ... as installed there; ``.pth`` files of that directory, such as the
editable install's hook, are not run), and the wheel goes in with
``pip --python VENV install --no-deps --no-index``. The test checks that
``relaybit`` is then imported from the wheel's files, not from ``src/``.
examples/systemd/relaybit.service is checked here too (the unit the docs give).
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src" / "relaybit"
EXAMPLES_TEST = REPO / "tests" / "test_examples.py"


def run(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    proc = run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("relaybit-*.whl"))
    sdists = list(out.glob("relaybit-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def venv(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the wheel installed (not editable); its bin/ directory."""
    root = tmp_path_factory.mktemp("venv")
    proc = run(sys.executable, "-m", "venv", "--without-pip", root)
    assert proc.returncode == 0, proc.stderr
    python = root / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    site = Path(purelib.stdout.strip())
    # the dependencies, lent by the test virtualenv (appended after the venv's own)
    (site / "_relaybit_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        dist["wheel"],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield root / "bin"


def test_twine_accepts_the_wheel_and_the_sdist(dist: dict[str, Path]) -> None:
    proc = run(sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_the_wheel_carries_py_typed_and_every_module(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
    assert "relaybit/py.typed" in names
    modules = {
        "relaybit/" + p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules, "no module found under src/relaybit"
    assert sorted(modules - names) == []
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        assert "relaybit = relaybit.cli:main" in wheel.read(meta).decode()


def test_the_sdist_holds_the_source_tests_docs_and_examples(dist: dict[str, Path]) -> None:
    import tarfile

    with tarfile.open(dist["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for path in (
        "pyproject.toml",
        "README.md",
        "mkdocs.yml",
        "src/relaybit/py.typed",
        "src/relaybit/cli.py",
        "docs/index.md",
        "examples/quickstart.conf",
        "examples/systemd/relaybit.service",
        "tests/test_package.py",
        "scripts/test",
    ):
        assert path in names, path
    assert not any("node_modules" in n or "__pycache__" in n for n in names)


def test_the_installed_wheel_runs_version_from_its_own_files(venv: Path) -> None:
    proc = run(venv / "relaybit", "--version")
    assert proc.returncode == 0, proc.stderr
    import relaybit

    assert proc.stdout.strip() == f"relaybit v{relaybit.__version__}"
    where = run(venv / "python", "-c", "import relaybit; print(relaybit.__file__)")
    location = Path(where.stdout.strip())
    assert venv.parent in location.parents, location
    assert SRC not in location.parents


def test_the_installed_wheel_dry_runs_the_examples(venv: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES_TEST.parent))
    try:
        from test_examples import example_env, example_files
    finally:
        sys.path.pop(0)
    env = example_env(tmp_path)
    env.pop("PYTHONPATH", None)
    # tests/test_examples.py dry-runs every file with the source tree; from the wheel,
    # one file per example folder (every plugin family, upstream and parsers files)
    # and the YAML twins of the top folder prove the installed package is whole
    every = example_files()
    files = sorted({path.parent: path for path in reversed(every)}.values())
    files += [p for p in every if p.parent == Path("examples") and p.suffix == ".yaml"]
    assert len(set(p.parent for p in files)) >= 8, files
    procs = {
        path: subprocess.Popen(
            [str(venv / "relaybit"), "-c", str(path), "--dry-run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    }
    failed = {}
    for path, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failed[str(path)] = err or out
    assert failed == {}


def test_the_installed_wheel_runs_the_demo(venv: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = run(venv / "relaybit", "--demo", "--seconds", "3", env=env, cwd=venv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "none lost" in proc.stdout + proc.stderr


def test_the_systemd_unit_stops_gracefully_reloads_and_restarts() -> None:
    unit = REPO / "examples" / "systemd" / "relaybit.service"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    # systemd allows a key more than once (ExecReload): keep the last, check the text too
    parser.read_string(unit.read_text(encoding="utf-8"))
    service = parser["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    text = unit.read_text(encoding="utf-8")
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert "--dry-run" in service["ExecStartPre"]
    assert int(service["TimeoutStopSec"]) > 5  # above the default grace
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    docs = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "examples/systemd/relaybit.service" in docs
