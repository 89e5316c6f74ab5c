"""The hashing helpers: file digests, and the one cache key of a description (a JSON-able dict)
that keys every on-disk cache (decoded images, real-image statistics) and provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_hash(config: dict) -> str:
    """sha256 of a configuration's canonical JSON (provenance in generated PNGs)."""
    return hashlib.sha256(canonical(config)).hexdigest()


def cache_key(description: Any, length: int = 16) -> str:
    """The cache key of ``description``: the first ``length`` hex digits of the sha1 of its
    canonical JSON (sorted keys), so equal descriptions share a file and any change misses."""
    return hashlib.sha1(canonical(description)).hexdigest()[:length]


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()
