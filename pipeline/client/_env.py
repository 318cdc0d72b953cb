"""Where a client from the environment talks to: the API's and the wallet's addresses.

The variables and their defaults are wire facts (`pipeline.wire`); here is only how they are
read, kept apart from the client so that callers that merely need an address (the job's
forecast, the found capacity) read it the same way the client does. `MISSING_TOKEN_MESSAGE` is
what a client without a token says, from the constructor and from `from_env` alike.
"""

from __future__ import annotations

import os

import httpx

from .. import wire

MISSING_TOKEN_MESSAGE = (
    "no RunComfy API token: set RUNCOMFY_API_TOKEN (or RUNCOMFY_TOKEN, as RunComfy's CLI does); "
    "to run offline against the built-in simulator instead, use "
    "`pipeline run MANIFEST --backend sim`")


def env_base_url() -> str:
    """The API's base URL a client from the environment talks to (RUNCOMFY_BASE_URL)."""
    return os.environ.get(wire.BASE_URL_ENV_VAR) or wire.DEFAULT_BASE_URL


def origin(url: str) -> str:
    """scheme://host[:port] of a URL (its path dropped)."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}"


def env_account_url(base_url: str | None = None) -> str:
    """Where the wallet is read: RUNCOMFY_ACCOUNT_URL; else, when the API's address was
    changed (RUNCOMFY_BASE_URL, or `base_url` given), the same host as the API; else
    RunComfy's core API (wire.DEFAULT_ACCOUNT_URL)."""
    given = os.environ.get(wire.ACCOUNT_URL_ENV_VAR, "").strip()
    if given:
        return given.rstrip("/")
    api = base_url or os.environ.get(wire.BASE_URL_ENV_VAR, "").strip()
    if api and api.rstrip("/") != wire.DEFAULT_BASE_URL:
        return origin(api)
    return wire.DEFAULT_ACCOUNT_URL
