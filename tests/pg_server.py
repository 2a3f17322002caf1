"""Pytest plugin: a real PostgreSQL server for the session (filled in with the PostgreSQL backend)."""
