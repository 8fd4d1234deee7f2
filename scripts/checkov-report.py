"""Summarises checkov's JSON report and fails on what must not pass.

    python scripts/checkov-report.py target/checkov.json template.yaml examples/custom-resource.yaml

Run by scripts/check-template.sh after `checkov --output json`. Prints, per template,
the passed, failed and skipped checks (each skip with the reason written in the
template's Metadata), and exits 1 on:

- any failed check (fix it, or skip it in the resource's Metadata with a reason:
  docs/protections.md "Security scanners: checkov");
- a skip without a reason;
- a parsing error, or a template that checkov did not report at all although it has
  resources checkov has checks for (a scan that saw nothing must not pass).

Standard library only.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

# What checkov writes when a Metadata skip has no comment.
NO_COMMENT = {"", "no comment provided"}


def reports(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    # One framework: a report object; several: a list of them. A run that found
    # nothing to check is a bare summary (no "check_type").
    items = data if isinstance(data, list) else [data]
    return [r for r in items if isinstance(r, dict)]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    report_path, templates = Path(argv[1]), argv[2:]
    found = reports(report_path)
    problems: list[str] = []
    version = next((r.get("summary", {}).get("checkov_version") for r in found), "?")

    by_file: dict[str, dict[str, list[dict]]] = collections.defaultdict(
        lambda: {"passed": [], "failed": [], "skipped": []}
    )
    parsing_errors: list[str] = []
    for r in found:
        results = r.get("results") or {}
        parsing_errors += results.get("parsing_errors", [])
        for kind in ("passed", "failed", "skipped"):
            for c in results.get(f"{kind}_checks", []):
                by_file[c["file_path"].lstrip("/")][kind].append(c)
        if r.get("summary", {}).get("parsing_errors"):
            problems.append(f"checkov could not parse: {parsing_errors or 'see its log'}")

    total = collections.Counter()
    print(f"checkov {version} (--framework cloudformation, offline):")
    for t in templates:
        got = by_file.pop(t, {"passed": [], "failed": [], "skipped": []})
        n = {k: len(v) for k, v in got.items()}
        total.update(n)
        print(f"  {t}: {n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped")
        if not any(n.values()):
            kinds = checked_types(Path(t))
            if kinds:
                problems.append(f"{t}: no result although it has {', '.join(sorted(kinds))}")
            else:
                print("    (no resource of a type checkov has checks for)")
        for c in got["skipped"]:
            reason = (c["check_result"].get("suppress_comment") or "").strip()
            print(f"    skipped {c['check_id']} on {c['resource']}: {reason or '(no reason)'}")
            if reason.lower() in NO_COMMENT:
                problems.append(f"{t}: skip of {c['check_id']} on {c['resource']} gives no reason")
        for c in got["failed"]:
            lines = "-".join(str(x) for x in c.get("file_line_range") or [])
            problems.append(
                f"{t}:{lines}: {c['check_id']} {c['check_name']!r} FAILED for {c['resource']}"
            )
    for other, got in by_file.items():  # a file nobody asked about
        problems.append(f"checkov reported {other}, which was not asked for")
    print(f"  total: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")

    for p in problems:
        print(f"checkov: {p}", file=sys.stderr)
    if problems:
        print(
            "checkov: fix each finding, or skip it in the resource's Metadata "
            "(checkov: skip: - id: CKV_AWS_n, comment: <reason>) and list it in "
            'docs/protections.md "Security scanners: checkov"',
            file=sys.stderr,
        )
        return 1
    return 0


# Resource types of checkov's CloudFormation checks that our templates could use; a
# template holding one of them must have produced results.
CHECKED_PREFIXES = (
    "AWS::Serverless::",
    "AWS::Lambda::",
    "AWS::IAM::",
    "AWS::SQS::",
    "AWS::SNS::",
    "AWS::Logs::",
    "AWS::ApiGateway::",
    "AWS::ApiGatewayV2::",
    "AWS::S3::",
    "AWS::KMS::",
)


def checked_types(template: Path) -> set[str]:
    """Resource types in ``template`` that checkov has checks for, read without a
    YAML library (the short-form tags would need one that knows them)."""
    kinds = set()
    for line in template.read_text().splitlines():
        s = line.strip()
        if s.startswith("Type:"):
            kind = s.split(":", 1)[1].strip().strip("'\"")
            if kind.startswith(CHECKED_PREFIXES):
                kinds.add(kind)
    return kinds


if __name__ == "__main__":
    sys.exit(main(sys.argv))
