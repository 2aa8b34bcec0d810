"""The ``streamml`` command line: local broker, topics, the supervised pipeline and the demo."""
