"""Who did what: actions stamped at admission, moved into each object's status outbox
exactly once, for the PostgreSQL mirror to store."""
