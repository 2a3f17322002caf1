"""`crmsync` commands: watch FOLDER.  Registered by importing this module at the end of cli.py."""

from __future__ import annotations

from .cli import app, command  # noqa: F401
