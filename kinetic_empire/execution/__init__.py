"""Execution ports: what turns order requests into orders on an exchange."""

from .simulated import SimulatedBroker

__all__ = ["SimulatedBroker"]
