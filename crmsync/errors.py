"""The few error types a caller catches.

    CrmsyncError                 base: every message is one line, in the user's language
    ├── NotFound                 a record, user or file that does not exist
    ├── PermissionDenied         the user's role may not do this (carries the reason)
    ├── InvalidInput             a value or argument that cannot be used (names where)
    │   └── InvalidFile          a file that cannot be read safely (names the file)
    ├── StaleVersion             the record changed since the version the caller read
    └── StoreError               the store cannot be opened, migrated or written

Per-cell validation problems are data (validate.Problem), never exceptions.
"""

from __future__ import annotations


class CrmsyncError(Exception):
    """Base class; str(error) is the one-line message shown to the user."""


class NotFound(CrmsyncError):
    """A record, user, enumeration or file that does not exist."""


class PermissionDenied(CrmsyncError):
    """The user's role may not do this; the message says why."""


class InvalidInput(CrmsyncError):
    """A value or argument that cannot be used; the message says where and what to do."""


class InvalidFile(InvalidInput):
    """A file that cannot be read safely (corrupt, encrypted, too large, hostile)."""


class StaleVersion(CrmsyncError):
    """The record changed since the version the caller based its change on."""


class StoreError(CrmsyncError):
    """The store cannot be opened, migrated or written."""
