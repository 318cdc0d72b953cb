"""Keeping the API token out of what we print: `scrub(text)` and a scrubbing logging formatter.

The client never puts the token in its messages, but a bug (or a library) may: the CLI passes
everything it prints on the way out through `scrub`, which replaces the values of the token
variables (as they are, JSON-escaped, URL-encoded and inside base64) with `***`. The client
masks its own token the same way in the errors it raises and the answers it returns.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import re
from urllib.parse import quote, quote_plus

from . import wire

MASK = "***"
MIN_LENGTH = 4  # shorter values are not secrets worth mangling every line for


def _base64_cores(secret: bytes) -> set[str]:
    """The parts of base64(… + secret + …) fixed by `secret` alone, at each of 3 alignments."""
    cores = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + secret + b"\0\0").decode("ascii")
            first = -(-8 * pad // 6)  # the first character made of secret bits only
            last = (8 * pad + 8 * len(secret)) // 6  # one past the last such character
            if last - first >= MIN_LENGTH:
                cores.add(text[first:last])
    return cores


@functools.lru_cache(maxsize=16)
def forms(secret: str) -> tuple[str, ...]:
    """The ways `secret` may show up in text (as is, JSON-escaped, URL-encoded, inside base64),
    longest first."""
    urls = {quote(secret, safe=""), quote_plus(secret)}
    urls |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), u) for u in urls}
    escaped = {json.dumps(secret)[1:-1], secret.replace("/", "\\/")}
    found = {secret} | urls | escaped | _base64_cores(secret.encode("utf-8"))
    return tuple(sorted(found, key=lambda f: (-len(f), f)))


def secret_values() -> list[str]:
    """The token values in the environment now (stripped, long enough to matter)."""
    values = {os.environ.get(name, "").strip() for name in wire.TOKEN_ENV_VARS}
    return [v for v in values if len(v) >= MIN_LENGTH]


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every form of the token (from the environment, or `secrets`) replaced by ***."""
    values = secret_values() if secrets is None else secrets
    for value in values:
        if not value:
            continue
        for form in forms(value):
            if form in text:
                text = text.replace(form, MASK)
    return text


class ScrubbingFormatter(logging.Formatter):
    """A logging.Formatter whose whole output (message, traceback, stack) is scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
