"""The reliability suite breaks things on purpose against the real local broker; it shares the
integration fixtures (broker, fresh topic prefixes, topic readers)."""

from tests.integration.conftest import kafka, prefix, topics, unique_group

__all__ = ["kafka", "prefix", "topics", "unique_group"]
