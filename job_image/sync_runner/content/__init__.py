"""Synced content in PostgreSQL: the tables, the fenced idempotent upsert, and the
shared machinery of the sync tasks (params, prerequisites and lock, the paged pull)."""
