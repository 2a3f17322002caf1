"""crmsync: a CRM for teams that live in Excel."""

__version__ = "0.1.0"
