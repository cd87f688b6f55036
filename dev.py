#!/usr/bin/env python3
"""Quick start without anything but Python: a virtualenv, then run or test.

    python3 dev.py run    # set up .venv and serve on http://127.0.0.1:8080 (SQLite)
    python3 dev.py test   # set up .venv with the test extra and run the whole suite

Anything after the command is passed on (``dev.py run --port 9000``,
``dev.py test -k fetch``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("ADAPTER_VENV", ROOT / ".venv"))
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(extras: str) -> None:
    """Create the venv and install the project once per pyproject.toml version."""
    stamp = VENV / f".installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    # The test extra is the project and more: it serves `run` as well.
    done = [stamp] if extras else [stamp, VENV / ".installed-test"]
    if any(path.exists() and path.read_text() == wanted for path in done):
        return
    if not PYTHON.exists():
        print(f"creating virtualenv {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "-e", target], check=True)
    stamp.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        ensure_venv("test" if command == "test" else "")
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"dev.py: setting up {VENV} failed: {exc}", file=sys.stderr)
        return 1
    if command == "run":
        args = [PYTHON, "-m", "adapter", "serve", *rest]
    else:
        args = [PYTHON, "-m", "pytest", *rest]
    os.chdir(ROOT)
    if os.name == "posix":
        # Become the server (or pytest): signals such as a service manager's
        # SIGTERM reach it, and nothing is left running when it ends.
        os.execv(PYTHON, [str(a) for a in args])
    return subprocess.call(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
