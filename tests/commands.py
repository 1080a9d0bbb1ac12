"""Running the project's commands as a user runs them: `python -m MODULE` from the repository root."""

from __future__ import annotations

import subprocess
import sys

from local.stack import REPO


def run_module(module: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
