"""System programs a test drives (Debian's prometheus, chromium): found on PATH, or the test skips.

Where CI has installed them, an environment variable (TESTNET_REQUIRE_PROMETHEUS=1,
TESTNET_REQUIRE_BROWSER=1; .ci/run sets both) turns the skip into a failure, so a missing package
cannot pass unnoticed, as TESTNET_REQUIRE_DOCKER does for the Docker tests.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str, env_var: str, package: str) -> str:
    """The path of `name` on PATH; otherwise skip, or fail when `env_var` is "1"."""
    path = shutil.which(name)
    if path is not None:
        return path
    reason = (f"{name!r} not found on PATH: install Debian's {package} package "
              f"(apt-get install {package})")
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{env_var}=1 but {reason}")
    pytest.skip(reason)
