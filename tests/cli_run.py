"""Running the `crmsync` command in-process, as the CLI tests do."""

from __future__ import annotations

from typer.testing import CliRunner

from crmsync.cli import app

runner = CliRunner()


def run(*args, code: int = 0) -> str:
    """Run `crmsync ARGS…`; assert its exit code; return what it printed."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output
