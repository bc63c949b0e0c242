"""Validate inbound OCPP calls against the OCA JSON schemas and parse the ones we bill on.

Entry point: :func:`validate_call` ``(ocpp_version, action, payload) -> model | None``.

1. The action must be one the version defines (a schema ``ocpp/v16/schemas/<Action>.json``,
   ``ocpp/v201/schemas/<Action>Request.json`` or ``ocpp/v21/schemas/<Action>Request.json``
   exists in the installed ``ocpp`` package), else :class:`InvalidMessage`.
2. Unambiguous field variants that real chargers send are rewritten first (see
   :mod:`schemas.ocpp16` and :mod:`schemas.ocpp201` for the accepted and rejected ones).
3. The payload is validated against the OCA JSON schema (``jsonschema``; one compiled
   validator per schema, cached; a compiled fast check of the same schema,
   :mod:`schemas.ocpp_fastcheck`, confirms valid payloads first, and ``jsonschema`` decides
   every payload it refuses). The most relevant violation becomes the reason, e.g.
   ``StartTransaction: meterStart: 'abc' is not of type 'integer'``.
4. For the actions we bill on the payload is parsed into an exact pydantic model
   (Decimal values, UTC timestamps): 1.6 StartTransaction / MeterValues / StopTransaction,
   2.0.1 and 2.1 TransactionEvent. Every other known action (BootNotification, Heartbeat,
   StatusNotification, Authorize, ...) returns None after passing its schema. The models
   of a schema-valid payload of the plain shape chargers send are built directly
   (``FAST_CALL_MODELS`` of :mod:`schemas.ocpp16` / :mod:`schemas.ocpp201`, same result
   as ``model_validate``); pydantic validates everything else and words the refusals.
   For these billed calls the check and the build are one generated function
   (``ONE_PASS_BUILDERS``, :func:`schemas.ocpp_fastcheck.compile_builder`): each field is read
   once; a payload it does not vouch for takes the two passes above.

``tests/unit/test_ocpp_fastbuild.py`` checks that these fast paths decide exactly like the
detailed path (jsonschema + pydantic) on valid, varied and broken payloads.

:func:`validate_response` does the same for a CALLRESULT payload (the 1.6
StartTransaction answer carries the transactionId).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from collections.abc import Callable
from typing import Any, NamedTuple

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import BaseModel, ValidationError

from schemas import ocpp16, ocpp201
from schemas.ocpp_base import InvalidMessage, json_path
from schemas.ocpp_fastcheck import Check, compile_builder, compile_schema

__all__ = [
    "InvalidMessage",
    "compile_call_builder",
    "validate_call",
    "validate_response",
    "known_actions",
    "ocpp16",
    "ocpp201",
]

_SCHEMA_DIRS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
_VERSION_MODULES = {"1.6": ocpp16, "2.0.1": ocpp201, "2.1": ocpp201}
_ACTION_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
_MAX_REASON = 500


@lru_cache(maxsize=None)
def _schema_files(version: str) -> frozenset[str]:
    folder = resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas"
    return frozenset(p.name for p in folder.iterdir() if p.name.endswith(".json"))


def _schema_name(version: str, action: str, response: bool) -> str:
    if version == "1.6":
        return f"{action}Response.json" if response else f"{action}.json"
    return f"{action}Response.json" if response else f"{action}Request.json"


def known_actions(version: str) -> frozenset[str]:
    """The CALL actions (charger or central system initiated) the version's schemas define."""
    names = _schema_files(version)
    if version == "1.6":
        return frozenset(n[:-5] for n in names if not n.endswith("Response.json"))
    return frozenset(n[: -len("Request.json")] for n in names if n.endswith("Request.json"))


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every ``#/definitions/X`` reference replaced by X itself.

    The OCA schemas are not recursive, so this terminates; it makes validation about 2.5x
    faster (jsonschema's reference lookup dominates otherwise) and changes no result.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return _inline_refs(definitions[ref.removeprefix("#/definitions/")], definitions)
        return {k: _inline_refs(v, definitions) for k, v in node.items() if k != "definitions"}
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    return node


def _schema(version: str, file_name: str) -> tuple[dict[str, Any], Any]:
    """One OCA schema file of the ``ocpp`` package, parsed (a new dict per call), and the
    ``jsonschema`` validator class of its draft."""
    path = resources.files("ocpp") / _SCHEMA_DIRS[version] / "schemas" / file_name
    schema = json.loads(path.read_text(encoding="utf-8"))
    return schema, jsonschema.validators.validator_for(schema)


@lru_cache(maxsize=None)
def _validator(version: str, file_name: str) -> tuple[Any, Check | None]:
    """The compiled validators of one OCA schema (cached: one pair per schema file):
    ``jsonschema``'s (the authority, writes reasons) and the fast yes-check of
    :mod:`schemas.ocpp_fastcheck` (None when the schema uses keywords it does not know)."""
    schema, cls = _schema(version, file_name)
    fast = compile_schema(schema, draft4=cls is jsonschema.Draft4Validator)
    if "definitions" in schema:
        schema = _inline_refs(schema, schema["definitions"])
    return cls(schema), fast


def _check_version_and_action(ocpp_version: str, action: str, response: bool) -> str:
    if ocpp_version not in _SCHEMA_DIRS:
        raise InvalidMessage(
            f"unknown OCPP version {ocpp_version!r} (expected one of {sorted(_SCHEMA_DIRS)})"
        )
    if not isinstance(action, str) or not _ACTION_RE.match(action):
        raise InvalidMessage(f"malformed action name {action!r}")
    file_name = _schema_name(ocpp_version, action, response)
    if file_name not in _schema_files(ocpp_version):
        kind = "response to " if response else ""
        raise InvalidMessage(f"unknown action {kind}{action!r} for OCPP {ocpp_version}")
    return file_name


def _schema_reason(action: str, error: jsonschema.ValidationError) -> str:
    where = json_path(error.absolute_path)
    message = error.message
    if len(message) > 200:
        message = message[:200] + "..."
    return f"{action}: {where}: {message}"


def _pydantic_reason(action: str, error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = json_path(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{action}: {where}: {message}"


class _Plan(NamedTuple):
    """What validating one (version, action, CALL or CALLRESULT) takes, looked up once."""

    normalize: Callable[[str, dict[str, Any]], dict[str, Any]] | None
    validator: Any
    fast: Check | None
    model: type[BaseModel] | None
    fast_model: Callable[[dict[str, Any]], BaseModel] | None


#: (version, action, response) -> plan, for the known actions only (bounded by the schemas).
_PLANS: dict[tuple[str, str, bool], _Plan] = {}


def _plan(ocpp_version: str, action: str, response: bool) -> _Plan:
    if ocpp_version.__class__ is str and action.__class__ is str:
        plan = _PLANS.get((ocpp_version, action, response))
        if plan is not None:
            return plan
    file_name = _check_version_and_action(ocpp_version, action, response)
    module = _VERSION_MODULES[ocpp_version]
    validator, fast = _validator(ocpp_version, file_name)
    if response:
        plan = _Plan(None, validator, fast, module.RESPONSE_MODELS.get(action), None)
    else:
        plan = _Plan(module.normalize_call, validator, fast, module.CALL_MODELS.get(action),
                     module.FAST_CALL_MODELS.get(action))
    _PLANS[ocpp_version, action, response] = plan
    if not response and fast is not None and module.normal_if_schema_valid(action):
        one_pass = _one_pass(ocpp_version, file_name, action) if plan.fast_model is not None else None
        if one_pass is not None:
            _AS_RECEIVED.setdefault(ocpp_version, {})[action] = (one_pass, True)
        elif plan.model is None or plan.fast_model is not None:
            _AS_RECEIVED.setdefault(ocpp_version, {})[action] = (fast, plan.fast_model)
    return plan


@lru_cache(maxsize=None)
def _one_pass(version: str, file_name: str, action: str) -> Callable[[Any], BaseModel | None] | None:
    """The generated check-and-build of a billed CALL schema (``compile_builder`` with the
    version module's ``ONE_PASS_BUILDERS``): the model of a plain payload, read once; None
    (not sure) for anything else. None when the schema does not compile for it."""
    builders = _VERSION_MODULES[version].ONE_PASS_BUILDERS.get(action)
    if builders is None:
        return None
    schema, cls = _schema(version, file_name)
    return compile_builder(schema, cls is jsonschema.Draft4Validator, builders)


def compile_call_builder(ocpp_version: str, action: str,
                         builders: dict[tuple[str, ...], Any]) -> Callable[[Any], Any] | None:
    """The one-pass check of a billed CALL schema with other builders than the models'
    (``ONE_PASS_BUILDERS`` with the same properties per node; :mod:`sessions.calls` builds
    plain values the assembler reads once). It checks exactly what :func:`validate_call`'s
    one pass checks, so a payload it builds a value of (no builder refused) is one the
    models' one pass builds the model of, from the same property values. None where
    :func:`validate_call` takes no one pass for the payload as received (the version module
    may rewrite such payloads, or a schema does not compile)."""
    file_name = _check_version_and_action(ocpp_version, action, False)
    module = _VERSION_MODULES[ocpp_version]
    if not module.normal_if_schema_valid(action) or module.FAST_CALL_MODELS.get(action) is None:
        return None
    if _validator(ocpp_version, file_name)[1] is None or _one_pass(ocpp_version, file_name, action) is None:
        return None
    schema, cls = _schema(ocpp_version, file_name)
    return compile_builder(schema, cls is jsonschema.Draft4Validator, builders)


def _validate(
    ocpp_version: str, action: str, payload: Any, response: bool
) -> BaseModel | None:
    normalize, validator, fast, model, fast_model = _plan(ocpp_version, action, response)
    if not isinstance(payload, dict):
        raise InvalidMessage(f"{action}: payload must be a JSON object, got {type(payload).__name__}")
    if normalize is not None:
        try:
            payload = normalize(action, payload)
        except InvalidMessage as exc:
            raise InvalidMessage(f"{action}: {exc.reason}") from None
    if fast is None or not fast(payload):
        error = best_match(validator.iter_errors(payload))
        if error is not None:
            raise InvalidMessage(_schema_reason(action, error))
    if model is None:
        return None
    if fast_model is not None:
        # The payload passed its schema: build the model directly when every field has the
        # plain shape (schemas.ocpp_base, "fast constructors"). NotFast, or any surprise,
        # leaves it to pydantic below, so the fast path can only ever save time.
        try:
            return fast_model(payload)
        except Exception:  # noqa: BLE001
            pass
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessage(_pydantic_reason(action, exc)) from None
    except InvalidMessage as exc:  # pragma: no cover - raised outside a pydantic validator
        raise InvalidMessage(f"{action}: {exc.reason}") from None


#: version -> action -> (fast check, fast constructor or None) of the CALLs whose payload
#: may be checked and built as received, before normalize_call: for these, normalize_call
#: leaves every payload unchanged that passes the fast check and (billed actions) the fast
#: constructor as received (the version module's ``normal_if_schema_valid``). For the
#: billed actions whose schema compiles with the version module's ``ONE_PASS_BUILDERS``:
#: (one-pass check-and-build, True) instead, which builds a subset of those payloads (the
#: exact JSON classes) alike. Filled by _validate for the known actions only.
_AS_RECEIVED: dict[str, dict[str, tuple[Callable[[Any], Any], Callable[[dict[str, Any]], BaseModel] | bool | None]]] = {}


def validate_call(ocpp_version: str, action: str, payload: Any) -> BaseModel | None:
    """Validate an inbound CALL and parse it when we bill on it (module docstring).

    Returns an :mod:`schemas.ocpp16` / :mod:`schemas.ocpp201` model for StartTransaction,
    MeterValues, StopTransaction (1.6) and TransactionEvent (2.0.1, 2.1); None for any
    other action the version defines. Raises :class:`InvalidMessage` with a reason naming
    the field otherwise.
    """
    if type(payload) is dict and type(ocpp_version) is str and type(action) is str:
        # The plain case first, on the payload as received: the fast check confirms it and
        # the fast constructor builds the model; normalize_call would return it unchanged
        # (_AS_RECEIVED), so this is what _validate gives. Anything else: _validate.
        by_action = _AS_RECEIVED.get(ocpp_version)
        if by_action is not None:
            plain = by_action.get(action)
            if plain is not None:
                try:
                    check, build = plain
                    if build is True:  # one pass: checks and builds (None: not sure)
                        model = check(payload)
                        if model is not None:
                            return model
                    elif check(payload):
                        return None if build is None else build(payload)
                except Exception:  # noqa: BLE001 - NotFast or a surprise: _validate decides
                    pass
    try:
        return _validate(ocpp_version, action, payload, response=False)
    except InvalidMessage as exc:
        if len(exc.reason) > _MAX_REASON:
            raise InvalidMessage(exc.reason[:_MAX_REASON] + "...") from None
        raise


def validate_response(ocpp_version: str, action: str, payload: Any) -> BaseModel | None:
    """Validate a CALLRESULT payload; parsed for 1.6 StartTransaction (its transactionId)."""
    return _validate(ocpp_version, action, payload, response=True)
