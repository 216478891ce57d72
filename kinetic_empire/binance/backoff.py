"""Exponential backoff with jitter, shared by the REST client and both WebSocket clients."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random, spread: float = 1.0) -> float:
    """``base·2^(attempt-1)`` seconds, capped, times a random factor in ``[0.5, 0.5 + spread)``.

    The jitter keeps many clients (or many reconnecting streams) from retrying in lockstep.
    """
    return min(cap_s, base_s * 2 ** min(attempt - 1, 10)) * (0.5 + spread * rng.random())
