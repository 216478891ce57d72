"""Helpers for the tests and benchmarks: harnesses and fixtures that are not tests themselves."""
