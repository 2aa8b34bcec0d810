"""The producer: puts events and their natural labels on the bus.

Sources: built-in scenarios (:mod:`services.producer.scenarios`), and your own code through
:class:`services.producer.client.EventClient`.
"""
