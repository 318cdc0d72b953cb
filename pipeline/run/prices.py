"""The prices a run uses, asked of the service's catalog (free of charge), else cached.

pipeline.job.price decides which price applies from the entries it is given (and caches them
in the job folder); this is the side that goes to the network for them: a run asks the live
catalog (`fetch_prices`), and `plan` or `status` of a job never run ask it the same way
(`price_now`; the built-in simulator's catalog is its configuration, read without starting it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import AuthError, ClientError, MissingToken
from ..job.folder import JobFolder
from ..job.price import (
    SIM_ORIGIN,
    Prices,
    cache_entry,
    cached_entry,
    catalog_entry,
    models_of,
    resolve_prices,
)
from ..prepare.manifest import Manifest

if TYPE_CHECKING:
    from ..client import RunComfyClient

log = logging.getLogger("pipeline.price")


async def fetch_prices(client: RunComfyClient, m: Manifest, folder: JobFolder, origin: str, *,
                       cache: bool = True) -> Prices:
    """The price of each model from the live catalog (cached in the job folder unless `cache`
    is false), else the entry cached earlier. A refused token stops everything."""
    import asyncio

    models = models_of(m)
    answers = await asyncio.gather(*(client.model_entry(x.id) for x in models),
                                   return_exceptions=True)
    entries: dict[str, dict[str, Any] | None] = {}
    live: dict[str, bool] = {}
    fetched = []
    for model, answer in zip(models, answers, strict=True):
        if isinstance(answer, AuthError):
            raise answer
        if isinstance(answer, ClientError):
            log.info("the catalog did not answer for %s (%s); using the last entry fetched, if "
                     "any", model.id, answer)
            entries[model.id], live[model.id] = cached_entry(folder, model.id), False
            continue
        if isinstance(answer, BaseException):
            raise answer
        entry = catalog_entry(model.id, answer.price_usd, answer.price_unit, answer.note, origin)
        entries[model.id], live[model.id] = entry, True
        fetched.append(entry)
    if cache and fetched:
        cache_entry(folder, *fetched)
    return resolve_prices(m, entries, live=live)


def price_now(m: Manifest, folder: JobFolder, *, backend: str | None = None,
              offline: bool = False) -> Prices:
    """The prices a run would use, for `plan` (and `status` of a job never run): asked of the
    catalog as the run asks it (free of charge; the built-in simulator's catalog is its
    configuration), else the entries cached by the last run."""
    backend = backend or m.backend
    if backend == "sim":
        from ..sim import SimConfig
        from ..sim.listing import stated

        config = SimConfig()
        entries = {}
        for model in models_of(m):
            usd, unit, note = stated(model, config)
            entries[model.id] = catalog_entry(model.id, usd, unit, note, SIM_ORIGIN)
        return resolve_prices(m, entries, live=True)
    if not offline:
        import asyncio

        from ..client import RunComfyClient  # httpx: only when the catalog is asked

        try:
            client = RunComfyClient.from_env(retry_attempts=2, retry_timeout=10.0, timeout=10.0)
        except MissingToken:
            pass
        else:
            async def ask() -> Prices:
                async with client:
                    return await fetch_prices(client, m, folder,
                                              urlparse(client.base_url).netloc, cache=False)
            try:
                return asyncio.run(ask())
            except AuthError as exc:
                log.warning("the catalog refused the token (%s); the price shown is not the "
                            "catalog's", exc)
    return resolve_prices(m, {x.id: cached_entry(folder, x.id) for x in models_of(m)})
