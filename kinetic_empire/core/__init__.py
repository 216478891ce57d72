"""The core layer: events, enums, symbol rules, bus, clock and errors.

Nothing in here imports any other part of Kinetic Empire, so every other layer can depend on it.
"""
