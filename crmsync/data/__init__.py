"""Seed data: lists a new store starts with. Once seeded, the admin owns them (crmsync enum …)."""
