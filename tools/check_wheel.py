"""Build the wheel, install it (not editable) into a fresh virtual environment, and run it.

    python3 tools/check_wheel.py [--wheel DIST/hessrank-….whl] [--keep DIR]

1. ``python3 -m build --wheel`` (unless ``--wheel`` names one), and checks that the wheel
   holds ``hessrank/py.typed`` and the console script ``hessian-rank``;
2. a virtual environment with the system's site-packages (so the dependencies already
   installed are reused), the wheel installed into it with ``--no-deps --force-reinstall``;
3. from an empty temporary folder, with ``PYTHONPATH`` unset: ``hessrank.__file__`` must lie
   inside the environment (an editable install of the checkout must not shadow the wheel),
   ``hessrank.__version__`` and ``hessian-rank --version`` must equal the wheel's version and
   ``src/hessrank/_version.py``'s, and the README's main job, ``hessian-rank run``, must end
   with exit status 0 and print the three ranks.

Exit status 0 when every check passes; otherwise 1 with the failed check on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _source_version() -> str:
    text = (ROOT / "src" / "hessrank" / "_version.py").read_text()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


def _fail(message: str) -> None:
    print(f"check_wheel: {message}", file=sys.stderr)
    raise SystemExit(1)


def _run(cmd, *, cwd, env, timeout=600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        _fail(f"{' '.join(map(str, cmd))} exited with {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def build_wheel(outdir: Path) -> Path:
    """The wheel ``python3 -m build --wheel`` makes from the checkout, in ``outdir``."""
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(ROOT)], cwd=ROOT,
         env=os.environ.copy())
    wheels = sorted(outdir.glob("hessrank-*.whl"))
    if len(wheels) != 1:
        _fail(f"expected one wheel in {outdir}, found {[w.name for w in wheels]}")
    return wheels[0]


def check(wheel: Path, workdir: Path) -> None:
    """Install ``wheel`` into a fresh environment under ``workdir`` and run it (see the module)."""
    version = wheel.name.split("-")[1]
    if version != _source_version():
        _fail(f"the wheel's version {version} is not src/hessrank/_version.py's {_source_version()}")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next((zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")), "")
    if "hessrank/py.typed" not in names:
        _fail(f"{wheel.name} does not ship hessrank/py.typed")
    if "hessian-rank = hessrank.cli:entry" not in entry_points:
        _fail(f"{wheel.name} has no console script hessian-rank: {entry_points!r}")

    venv = workdir / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=workdir, env=os.environ.copy())
    bindir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", PIP_DISABLE_PIP_VERSION_CHECK="1",
               JAX_PLATFORMS=env.get("JAX_PLATFORMS", "cpu"))
    _run([bindir / "python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
         cwd=workdir, env=env)

    empty = workdir / "empty"
    empty.mkdir()
    where = _run([bindir / "python", "-c", "import hessrank; print(hessrank.__file__); print(hessrank.__version__)"],
                 cwd=empty, env=env).split()
    if not Path(where[0]).resolve().is_relative_to(venv.resolve()):
        _fail(f"hessrank imported from {where[0]}, not from the environment {venv}: the wheel is shadowed")
    if where[1] != version:
        _fail(f"hessrank.__version__ is {where[1]}, the wheel's version is {version}")
    printed = _run([bindir / "hessian-rank", "--version"], cwd=empty, env=env).strip()
    if printed.split()[-1] != version:
        _fail(f"hessian-rank --version printed {printed!r}, the wheel's version is {version}")
    out = _run([bindir / "hessian-rank", "run"], cwd=empty, env=env)
    if not all(re.search(rf"^{m}\s+\d+", out, re.MULTILINE) for m in ("H_L", "H_o", "H_F")):
        _fail(f"hessian-rank run printed no ranks:\n{out}")
    print(f"check_wheel: {wheel.name} installed in a fresh environment, imported from it, "
          f"--version {printed!r}, hessian-rank run ok")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="check this wheel instead of building one")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hessrank-wheel-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        wheel = args.wheel.resolve() if args.wheel else build_wheel(workdir / "dist")
        check(wheel, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
