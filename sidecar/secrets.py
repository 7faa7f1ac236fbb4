"""Secrets from the environment: a variable, or a file named by ``<VAR>_FILE`` (Kubernetes
secret volumes, Docker secrets). Never from a command-line flag, never logged."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr


def secret_from_env(var: str) -> SecretStr | None:
    """The secret in env ``var``, else in the file named by env ``var_FILE``, else None.

    Raises ValueError (a config error at start) when the named file cannot be read.
    """
    value = os.environ.get(var)
    path = os.environ.get(f"{var}_FILE")
    if value is None and path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read {var}_FILE ({path}): {exc.strerror}") from None
    return SecretStr(value) if value else None
