"""Deterministic client order ids derived from the intent id.

Binance accepts ``^[.A-Z:/a-z0-9_-]{1,36}$``. The same intent always yields the same ids, so a
restarted engine recognises its own orders; an intent id that is too long or has other characters is
cleaned and shortened with a hash of the original, which keeps ids distinct.
"""

from __future__ import annotations

import hashlib
import re
import string

CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_BAD = re.compile(r"[^.A-Z:/a-z0-9_-]")
_ALLOWED = ".:/_-" + string.ascii_letters + string.digits  # the class in CLIENT_ID_RE
_ALLOWED_SET = frozenset(_ALLOWED)
VALID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}").fullmatch
"""A match when the whole id is 1-36 characters of the class (what CLIENT_ID_RE matches, less its ``$``'s allowance
for a trailing newline): faster than a set test of its characters."""

ENTRY = "e"
STOP = "sl"
TAKE_PROFIT = "tp"
CLOSE = "x"
REDUCE = "r"
BREACH = "xs"  # market close when a protective trigger is already crossed at the entry fill


def client_id(intent_id: str, suffix: str, part: int = 0) -> str:
    """``{intent_id}-{suffix}`` (``-{suffix}{part}`` for the second and later chunks of a split order)."""
    tail = "-" + suffix + str(part + 1) if part else "-" + suffix
    cid = intent_id + tail
    if VALID(cid) or CLIENT_ID_RE.match(cid):
        return cid
    digest = hashlib.blake2b(intent_id.encode(), digest_size=5).hexdigest()
    room = 36 - len(tail) - len(digest) - 1
    return f"{_BAD.sub('_', intent_id)[:room]}.{digest}{tail}"
