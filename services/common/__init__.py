"""Shared plumbing: settings, Kafka clients, dead letters, metrics server and process runtime.

Imports only :mod:`schemas`; never another service.
"""
