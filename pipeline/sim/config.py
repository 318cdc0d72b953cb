"""The simulator's settings: queue shape, price, variant switches and fault rates, in one value.

Everything the public docs leave open (see ../shared/api/runcomfy-queue.md §12) is a switch
here, so the client can be tested against every plausible reading of the real service.
A `SimConfig` is frozen and checked when built: a bad value is a ValueError naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .. import wire

PRICE_UNITS = ("second", "output")
RESULT_SUCCESS_WORDS = (wire.SUCCEEDED, wire.COMPLETED)
FAILURE_STATUS_WORDS = (wire.COMPLETED, wire.FAILED, wire.ERROR_WORD)
STATUS_SUCCESS_WORDS = (wire.COMPLETED, wire.SUCCEEDED)  # /status once a request succeeded
CANCELLED_WORDS = (wire.CANCELLED, wire.CANCELED)
OUTPUT_KEYS = (wire.OUTPUT_VIDEO, wire.OUTPUT_VIDEOS)
AUTH_FAILURE_STATUSES = (401, 400, 403)

# Fault probabilities, each in [0, 1]: name -> what it does (also the CLI's help text).
FAULT_RATES = {
    "error_rate": "5xx answers on API calls (a submit may be accepted before its 5xx)",
    "rate_limit_rate": "429 answers with Retry-After on API calls",
    "drop_rate": "connections closed without an answer, before or after the call is processed",
    "slow_rate": "API answers delayed by slow_delay seconds",
    "fail_rate": "generations that end failed with an error string",
    "download_fault_rate": "output downloads that 404 for a while or are cut short",
}


# The built-in simulator's generation time (`pipeline run --backend sim`): seconds, uniform.
BUILTIN_GEN_TIME = (1.0, 3.0)


@dataclass(frozen=True)
class SimConfig:
    """How one simulator behaves; defaults are a fast, fault-free, documented-reading service."""

    capacity: int = 4
    gen_time: float | tuple[float, float] = (0.2, 0.5)  # seconds, uniform in [min, max]
    seed: int = 1
    token: str | None = None  # pin the one accepted bearer token; None accepts any non-empty one
    price_usd: float = 0.05
    price_unit: str = "second"  # "second" (of output video) or "output"
    cost_factor: float = 1.0  # /result bills the catalog price times this (a service that
    #                           charges more, or less, than its catalog says)
    balance: float | None = None  # the account's wallet in USD (GET /prod/v2/balance): lowered
    #                               by what is billed; a submit it cannot pay is refused
    #                               (400002). None: unlimited (the route says UNLIMITED_USD)

    # Fault injection: probabilities in [0, 1].
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    fail_rate: float = 0.0
    download_fault_rate: float = 0.0

    # Variant switches for what the docs leave open.
    result_success_word: str = wire.SUCCEEDED
    status_on_failure: str = wire.COMPLETED
    output_key: str = wire.OUTPUT_VIDEO
    auth_failure_status: int = 401
    error_code_quirk: bool | float = False  # True/1.0: every error answer is HTTP 200
    accept_data_uris: bool = True

    # Knobs of the faults above.
    retry_after: float = 1.0  # seconds, sent in Retry-After with each 429
    slow_delay: float = 2.0  # seconds added to a slow answer
    download_outage: float = 3.0  # seconds an output file 404s after a download fault
    submit_error_accept_fraction: float = 0.5  # of 500/502/504 submit errors, share accepted
    drop_after_fraction: float = 0.5  # of dropped connections, share processed before the drop

    # Output videos.
    video_long_side: int = 256  # preview size: longest side in pixels (even)
    fetch_timeout: float = 2.0  # seconds to fetch an http(s) input image before using a test card

    # Models served besides the bundled ones: folders laid out like a project's models/
    # (`<model id>/input.schema.json`, ...), looked in first, in order (see pipeline.sim.listing).
    models_dirs: tuple[str, ...] = ()
    # /status words (what the client tolerates besides the documented ones).
    status_success_word: str = wire.COMPLETED
    cancelled_word: str = wire.CANCELLED  # on /status and /result

    def __post_init__(self) -> None:
        gen = self.gen_time
        if isinstance(gen, (int, float)):
            gen = (float(gen), float(gen))
        try:
            lo, hi = (float(x) for x in gen)
        except (TypeError, ValueError):
            raise ValueError(
                f"gen_time must be seconds or (min, max), got {self.gen_time!r}") from None
        if not 0 <= lo <= hi:
            raise ValueError(f"gen_time must satisfy 0 <= min <= max, got {self.gen_time!r}")
        object.__setattr__(self, "gen_time", (lo, hi))
        object.__setattr__(self, "models_dirs", tuple(str(d) for d in self.models_dirs))
        quirk = self.error_code_quirk
        object.__setattr__(self, "error_code_quirk",
                           1.0 if quirk is True else 0.0 if quirk is False else float(quirk))
        for name in (*FAULT_RATES, "error_code_quirk", "submit_error_accept_fraction",
                     "drop_after_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        checks = [
            ("capacity", isinstance(self.capacity, int) and self.capacity >= 1, "an integer >= 1"),
            ("price_usd", self.price_usd >= 0, "a non-negative number"),
            ("price_unit", self.price_unit in PRICE_UNITS, f"one of {PRICE_UNITS}"),
            ("cost_factor", isinstance(self.cost_factor, (int, float))
             and 0 <= self.cost_factor <= 1000, "a number from 0 to 1000"),
            ("result_success_word", self.result_success_word in RESULT_SUCCESS_WORDS,
             f"one of {RESULT_SUCCESS_WORDS}"),
            ("status_on_failure", self.status_on_failure in FAILURE_STATUS_WORDS,
             f"one of {FAILURE_STATUS_WORDS}"),
            ("output_key", self.output_key in OUTPUT_KEYS, f"one of {OUTPUT_KEYS}"),
            ("auth_failure_status", self.auth_failure_status in AUTH_FAILURE_STATUSES,
             f"one of {AUTH_FAILURE_STATUSES}"),
            ("token", self.token is None or (isinstance(self.token, str) and self.token != ""),
             "None or a non-empty string"),
            ("balance", self.balance is None or (isinstance(self.balance, (int, float))
                                                 and self.balance >= 0), "None or USD >= 0"),
            ("retry_after", self.retry_after >= 0, "seconds >= 0"),
            ("slow_delay", self.slow_delay >= 0, "seconds >= 0"),
            ("download_outage", self.download_outage >= 0, "seconds >= 0"),
            ("video_long_side", isinstance(self.video_long_side, int)
             and 16 <= self.video_long_side <= 2048, "an integer in [16, 2048]"),
            ("fetch_timeout", self.fetch_timeout >= 0, "seconds >= 0"),
            ("status_success_word", self.status_success_word in STATUS_SUCCESS_WORDS,
             f"one of {STATUS_SUCCESS_WORDS}"),
            ("cancelled_word", self.cancelled_word in CANCELLED_WORDS,
             f"one of {CANCELLED_WORDS}"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"{name} must be {want}, got {getattr(self, name)!r}")

    @property
    def gen_span(self) -> tuple[float, float]:
        """gen_time as (min, max) seconds (__post_init__ makes it so)."""
        gen = self.gen_time
        return gen if isinstance(gen, tuple) else (gen, gen)

    def as_dict(self) -> dict[str, object]:
        """The settings as plain JSON-able values (shown by /__sim__/stats)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["token"] = None if self.token is None else "(pinned)"
        return out
