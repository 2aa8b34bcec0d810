"""Contracts run against more than one implementation (in-memory fakes and the real broker)."""
