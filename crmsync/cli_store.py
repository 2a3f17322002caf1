"""`crmsync` commands that move a whole store: migrate-store.  Registered at the end of cli.py."""

from __future__ import annotations

from .cli import app, command  # noqa: F401
