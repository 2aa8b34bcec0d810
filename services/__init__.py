"""streamml services: one package per service plus ``common`` (shared plumbing) and ``cli``."""
