"""Deterministic canary routing: which variant answers a request, from a hash of its routing key.

The key (the ``X-Routing-Key`` header, else the request id) is hashed with SHA-256, not Python's
``hash()``, so the split is the same in every process and every run: a client that sends the same key
always reaches the same variant, whichever uvicorn worker answers. The first 8 bytes of the digest,
read as a fraction of 2**64, fall below ``share`` for the challenger's share of keys.
"""

from __future__ import annotations

import hashlib

CHAMPION = "champion"
CHALLENGER = "challenger"
VARIANTS = (CHAMPION, CHALLENGER)


def key_fraction(key: str) -> float:
    """A routing key -> a number in [0, 1), uniform over keys, the same everywhere."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def variant_for(key: str, share: float) -> str:
    """``"challenger"`` for a ``share`` (0..1) of routing keys, ``"champion"`` for the rest."""
    return CHALLENGER if share > 0 and key_fraction(key) < share else CHAMPION
