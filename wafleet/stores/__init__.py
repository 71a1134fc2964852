"""Storage: the store interfaces and their SQLite implementations."""
