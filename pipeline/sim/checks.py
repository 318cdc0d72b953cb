"""What the simulated service refuses before it queues anything: bad tokens and bad bodies.

Each check returns None when all is well, or a `Refusal` (HTTP status, error code, message,
optional `detail` list) that the app turns into an error body. Validation messages name the
failing field by its location (`loc: ["body", "resolution"]`), built from the failing node of
the JSON Schema rather than from `str(ValidationError)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from .. import wire
from ..prepare.models import Model
from .config import SimConfig


@dataclass(frozen=True)
class Refusal:
    """An error answer: status, error_code, message and an optional FastAPI-style detail list."""

    status: int
    code: int
    message: str
    detail: list[dict[str, Any]] | None = None


def check_token(authorization: str | None, config: SimConfig) -> Refusal | None:
    """Any non-empty bearer token passes, unless the config pins one."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        reason = "missing bearer token"
    elif config.token is not None and token != config.token:
        reason = "invalid API token"
    else:
        return None
    return Refusal(config.auth_failure_status, wire.ERROR_CODE_ACCOUNT,
                   f"UserAccountError: {reason} (send 'Authorization: Bearer <token>')")


_VALIDATORS: dict[tuple[str, str], Any] = {}


def _validator(model: Model) -> Any:
    """One compiled validator per (model, schema version)."""
    key = (model.id, model.schema_sha256)
    if key not in _VALIDATORS:
        cls = validator_for(model.input_schema, default=jsonschema.Draft202012Validator)
        _VALIDATORS[key] = cls(model.input_schema)
    return _VALIDATORS[key]


def _problem(error: jsonschema.ValidationError) -> list[dict[str, Any]]:
    loc = ["body", *error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [{"loc": [*loc, name], "msg": "field required", "type": "missing"}
                for name in missing]
    return [{"loc": loc, "msg": error.message, "type": str(error.validator)}]


def check_body(body: Any, model: Model) -> Refusal | None:
    """The body must be a JSON object valid against the model's bundled input schema."""
    if not isinstance(body, dict):
        detail = [{"loc": ["body"], "msg": "the body must be a JSON object of model inputs",
                   "type": "type"}]
        return Refusal(422, wire.ERROR_CODE_VALIDATION, "Validation Error: body: not an object",
                       detail)
    validator = _validator(model)
    detail: list[dict[str, Any]] = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        detail.extend(_problem(error))
    if not detail:
        return None
    summary = "; ".join(f"{'.'.join(str(p) for p in d['loc'][1:]) or 'body'}: {d['msg']}"
                        for d in detail)
    return Refusal(422, wire.ERROR_CODE_VALIDATION, f"Validation Error: {summary}", detail)


def _data_uri_fields(value: Any, path: list[Any]) -> list[list[Any]]:
    if isinstance(value, str):
        return [path] if value.startswith("data:") else []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _data_uri_fields(v, [*path, i])]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _data_uri_fields(v, [*path, k])]
    return []


def check_data_uris(body: dict[str, Any], config: SimConfig) -> Refusal | None:
    """When data URIs are refused, name the first field holding one."""
    if config.accept_data_uris:
        return None
    found = _data_uri_fields(body, [])
    if not found:
        return None
    name = found[0][0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                 for p in found[0][1:])
    detail = [{"loc": ["body", *p], "msg": "data URIs are not accepted", "type": "value_error"}
              for p in found]
    return Refusal(400, wire.ERROR_CODE_BAD_INPUT,
                   f"InvalidInput: {name}: data URIs are not accepted; pass a public https URL",
                   detail)
