"""The package: one version everywhere, ``py.typed`` shipped, and the wheel runs when installed.

The wheel check itself (``tools/check_wheel.py``: build, install into a fresh virtual
environment, run ``hessian-rank --version`` and ``hessian-rank run`` from it) takes about a
minute; CI runs it as a step of ``.ci/run``, and this suite runs it when
``HESSRANK_TEST_WHEEL=1``.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import hessrank
from hessrank import _version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_defined_once_and_read_by_pyproject():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hessrank._version.__version__"}
    assert hessrank.__version__ == _version.__version__
    assert all(part.isdigit() for part in hessrank.__version__.split("."))


def test_py_typed_is_shipped():
    assert (ROOT / "src" / "hessrank" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["hessrank"]


def test_the_command_line_prints_the_package_version():
    done = subprocess.run([sys.executable, "-m", "hessrank.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hessian-rank", hessrank.__version__]


def test_the_docs_extra_installs_what_the_site_needs():
    docs = " ".join(PYPROJECT["project"]["optional-dependencies"]["docs"])
    assert "mkdocs-material" in docs and "mkdocstrings[python]" in docs


@pytest.mark.skipif(os.environ.get("HESSRANK_TEST_WHEEL") != "1", reason="about a minute; CI runs tools/check_wheel.py")
def test_the_wheel_installs_and_runs_in_a_fresh_environment():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "check_wheel.py")], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
