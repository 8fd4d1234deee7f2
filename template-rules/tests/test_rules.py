"""Tests of the cfn-lint custom rules in ../rules.

Run with the Python that has cfn-lint (nothing else is needed):

    .venv/bin/python -m unittest discover -s template-rules/tests -v

One cfn-lint run (``--append-rules``, JSON output) covers every snippet, the
project's two templates and mutated copies of template.yaml; the tests read its
findings:

- each ``bad/*.yaml`` produces exactly the custom findings its ``# expect:`` line
  names (a multiset: ``E9103 E9103`` is two findings), and nothing else;
- each ``good/*.yaml``, template.yaml and examples/custom-resource.yaml produce no
  finding at all (built-in rules included, so a snippet is valid CloudFormation
  apart from its one defect, and a rule that crashes - cfn-lint's E0002 - fails);
- each mutation of template.yaml (one line made bad) is caught, which shows the
  rules read the real template's shapes (Fn::If slots, Fn::Sub lists, Split of a
  parameter) and do not pass it vacuously;
- every rule has a bad snippet, an id in the custom range and a docstring.
"""

from __future__ import annotations

import collections
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the rules

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "rules"
REPO = HERE.parent.parent
PROJECT_TEMPLATES = [REPO / "template.yaml", REPO / "examples" / "custom-resource.yaml"]
BAD = sorted((HERE / "bad").glob("*.yaml"))
GOOD = sorted((HERE / "good").glob("*.yaml"))
CUSTOM_ID = re.compile(r"^[EWI]9\d{3}$")
EXPECT = re.compile(r"^# expect:(.*)$", re.MULTILINE)

# One defect put into template.yaml each: (what, regex, replacement, findings).
# The regex must match; only its first match is replaced.
MUTATIONS = [
    (
        "an event opts out of IAM",
        r"Auth: \{ Authorizer: AWS_IAM \}",
        "Auth: { Authorizer: NONE }",
        ["E9107"],
    ),
    (
        "the function loses its Role",
        r"      Role: !GetAtt TransferChrootRole\.Arn\n",
        "",
        ["E9106"],
    ),
    (
        "the role gets a managed policy",
        r"(      Description: transfer-chroot function role \(least privilege\)\n)",
        r"\1      ManagedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n",
        ["E9105"],
    ),
    (
        "a queue statement grants on every resource",
        r"Resource: !GetAtt CommandQueue\.Arn",
        'Resource: "*"',
        ["E9102"],
    ),
    (
        "an access action becomes a wildcard",
        r"- transfer:DescribeAccess\n",
        '- "transfer:*"\n',
        ["E9101", "E9103"],
    ),
    (
        # The defect the hand-written map let through: the SAR gives UpdateAccess no
        # resource type, so on server ARNs IAM never grants it.
        "UpdateAccess goes back onto the allowed servers' ARNs",
        r"(?s)(Sid: ChrootAccessesOfAllowedServers\n(\s*)Effect: Allow\n\s*Action:\n)"
        r"(.*?)\n *- Sid: ChrootAccesses\n.*?Resource: \"\*\"",
        r"\1\2  - transfer:UpdateAccess\n\3",
        ["E9110"],
    ),
    (
        # (?s)(.*) is greedy: the last slot, HasServer6, under its Fn::If.
        "the sixth server slot names every server",
        r"(?s)(.*)user/\$\{Id\}/\*",
        r"\1user/*/*",
        ["E9103"],
    ),
    (
        # Two defects: two resource types in one statement (E9103), and ListUsers on
        # user ARNs, which are not its type (E9110).
        "ListUsers joins the user actions' statement",
        r"- transfer:UpdateUser\n",
        "- transfer:UpdateUser\n                    - transfer:ListUsers\n",
        ["E9103", "E9110"],
    ),
    (
        # (?s) and the lazy .*?: the first server slot after the audit's Sid.
        "the audit lists the users of every server",
        r"(?s)(Sid: AuditAllowedServers.*?)server/\$\{Id\}",
        r"\1server/*",
        ["E9103"],
    ),
    (
        # Every server of the account only while the servers are known by tag alone.
        "every server is granted whenever a tag is set, list or not",
        r"- ServersByTagOnly\n(\s*)- Sid: ChrootUsersOfTaggedServers",
        r"- ServersByTag\n\1- Sid: ChrootUsersOfTaggedServers",
        ["E9103"],
    ),
    (
        "the audit may send to every queue",
        r"(Sid: QueueAuditFixesAndContinuations\n(?:.*\n){2}\s*)Resource: !GetAtt CommandQueue\.Arn",
        r'\1Resource: "*"',
        ["E9102"],
    ),
    (
        # "*" is allowed for the two X-Ray writes alone (no resource type).
        "the X-Ray statement also sends to every queue",
        r"- xray:PutTelemetryRecords\n",
        "- xray:PutTelemetryRecords\n                  - sqs:SendMessage\n",
        ["E9102"],
    ),
    (
        "PassRole may pass roles to Lambda",
        r"iam:PassedToService: transfer\.amazonaws\.com",
        "iam:PassedToService: lambda.amazonaws.com",
        ["E9104"],
    ),
    (
        # E9110 too: without its pattern the parameter may be anything, not a role ARN.
        "the role parameter accepts a wildcard",
        r'    AllowedPattern: "\^\(arn:aws[^\n]*\n',
        "",
        ["E9104", "E9110"],
    ),
]


def cfn_lint_command() -> list[str]:
    beside = Path(sys.executable).parent / "cfn-lint"
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if not found:
        raise unittest.SkipTest("cfn-lint not found beside this Python nor on PATH")
    return [found]


def expected_ids(path: Path) -> list[str]:
    lines = EXPECT.findall(path.read_text())
    if len(lines) != 1:
        raise AssertionError(f"{path.name}: needs exactly one '# expect:' line")
    return sorted(lines[0].split())


def load_rule_classes() -> list[type]:
    from cfnlint.rules import CloudFormationLintRule

    classes = []
    for file in sorted(RULES.glob("[A-Za-z1-9]*.py")):
        spec = importlib.util.spec_from_file_location(f"template_rules_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, CloudFormationLintRule) and cls.__module__ == module.__name__:
                classes.append(cls)
    return classes


class Rules(unittest.TestCase):
    findings: dict[str, list[dict]]
    mutated: dict[str, Path]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory(prefix="template-rules-")
        text = (REPO / "template.yaml").read_text()
        cls.mutated = {}
        for i, (what, pattern, replacement, _) in enumerate(MUTATIONS):
            changed, n = re.subn(pattern, replacement, text, count=1)
            if n != 1:
                raise AssertionError(
                    f"mutation {what!r}: {pattern!r} no longer matches template.yaml"
                )
            path = Path(cls.tmp.name) / f"mutation-{i}.yaml"
            path.write_text(changed)
            cls.mutated[what] = path

        files = [*PROJECT_TEMPLATES, *BAD, *GOOD, *cls.mutated.values()]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        run = subprocess.run(
            [
                *cfn_lint_command(),
                "--format",
                "json",
                "--append-rules",
                str(RULES),
                "--",
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        # Exit codes are a bitmask of 2 (error), 4 (warning), 8 (info) findings;
        # anything else means cfn-lint itself failed.
        if run.returncode & ~0b1110:
            raise AssertionError(f"cfn-lint failed ({run.returncode}):\n{run.stderr}{run.stdout}")
        cls.findings = collections.defaultdict(list)
        for m in json.loads(run.stdout or "[]"):
            cls.findings[str(Path(m["Filename"]).resolve())].append(m)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def of(self, path: Path) -> list[dict]:
        return self.findings.get(str(path.resolve()), [])

    @staticmethod
    def show(found: list[dict]) -> str:
        return "\n".join(
            f"  {m['Rule']}:{m['Location']['Start']['LineNumber']} {m['Message']}"
            for m in ({**m, "Rule": m["Rule"]["Id"]} for m in found)
        )

    def test_the_project_templates_pass(self) -> None:
        for path in PROJECT_TEMPLATES:
            with self.subTest(path.name):
                found = self.of(path)
                self.assertEqual(found, [], f"{path.name}:\n{self.show(found)}")

    def test_good_snippets_pass(self) -> None:
        self.assertTrue(GOOD)
        for path in GOOD:
            with self.subTest(path.name):
                found = self.of(path)
                self.assertEqual(found, [], f"{path.name}:\n{self.show(found)}")

    def test_bad_snippets_fail_with_exactly_their_findings(self) -> None:
        self.assertTrue(BAD)
        for path in BAD:
            with self.subTest(path.name):
                found = self.of(path)
                ids = sorted(m["Rule"]["Id"] for m in found)
                self.assertEqual(ids, expected_ids(path), f"{path.name}:\n{self.show(found)}")

    def test_mutations_of_template_yaml_are_caught(self) -> None:
        for what, _, _, expected in MUTATIONS:
            with self.subTest(what):
                found = self.of(self.mutated[what])
                ids = sorted(m["Rule"]["Id"] for m in found)
                hint = ""
                if what == "the function loses its Role" and "E9106" not in ids:
                    hint = (
                        "\nE9106 relies on cfn-lint handing rules the SAM source (true since "
                        "cfn-lint 1.54); see template-rules/README.md"
                    )
                self.assertEqual(ids, sorted(expected), f"{what}:\n{self.show(found)}{hint}")

    def test_every_rule_is_documented_and_has_a_bad_snippet(self) -> None:
        classes = load_rule_classes()
        ids = [c.id for c in classes]
        self.assertEqual(len(ids), len(set(ids)), f"duplicate rule ids: {ids}")
        # Built-in findings a snippet also expects (W3037, cfn-lint's own unknown
        # action) are not the custom rules' to account for.
        exercised = {i for path in BAD for i in expected_ids(path) if CUSTOM_ID.match(i)}
        for cls in classes:
            with self.subTest(cls.id or cls.__name__):
                self.assertRegex(cls.id, CUSTOM_ID)
                self.assertTrue(cls.shortdesc and cls.description, "shortdesc and description")
                self.assertTrue(inspect.getdoc(cls), "a docstring saying why")
                self.assertIn(cls.id, exercised, "no bad snippet expects this rule")
        self.assertTrue(
            exercised <= set(ids), f"snippets expect unknown rules: {exercised - set(ids)}"
        )


def load_iam_rules():
    spec = importlib.util.spec_from_file_location("template_rules_iam_fits", RULES / "iam_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Fits(unittest.TestCase):
    """What "a resource fits a resource type" means to E9110: some ARN matches both
    the policy's resource (its wildcards, a Fn::Sub's values) and the type's format in
    the Service Authorization Reference."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.rules = load_iam_rules()
        kms = "^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))?$"
        roles = "^(arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+(,arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+)*)?$"
        cls.cfn = types.SimpleNamespace(
            template={
                "Parameters": {
                    "Key": {"Type": "String", "AllowedPattern": kms},
                    "Roles": {"Type": "String", "AllowedPattern": roles},
                    "Anything": {"Type": "String"},
                },
                "Resources": {
                    "Logs": {"Type": "AWS::Logs::LogGroup"},
                    "Queue": {"Type": "AWS::SQS::Queue"},
                    "Topic": {"Type": "AWS::SNS::Topic"},
                },
            }
        )

    def fit(self, value, service: str, resource_type: str) -> bool:
        return self.rules.fits(self.rules.resolve(self.cfn, value), service, resource_type)

    def assertFits(self, value, service: str, yes: list[str], no: list[str]) -> None:
        for t in yes:
            self.assertTrue(self.fit(value, service, t), f"{value} should fit {service} {t}")
        for t in no:
            self.assertFalse(self.fit(value, service, t), f"{value} should not fit {service} {t}")

    def test_transfer(self) -> None:
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:user/s-0123/*", "transfer", ["user"], ["server"])
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:server/*", "transfer", ["server"], ["user"])
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:server/s-0123", "transfer", ["server"], ["user"])
        # A server id is one segment: server/s-0123/x is no server.
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:server/s-0123/x", "transfer", [], ["server"])
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:user/s-0123", "transfer", [], ["user", "server"])
        # Every resource of the service: fits each type (E9103 refuses it).
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:*", "transfer", ["user", "server"], [])

    def test_sub_values_and_iam_wildcards(self) -> None:
        sub = {"Fn::Sub": "arn:${AWS::Partition}:transfer:${AWS::Region}:${AWS::AccountId}:user/${Id}/*"}
        self.assertFits(sub, "transfer", ["user"], ["server"])
        hub = {"Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"}
        self.assertFits(hub, "securityhub", ["product"], ["hub"])
        self.assertFits("arn:aws:transfer:us-east-1:123456789012:user/s-012?/alice", "transfer", ["user"], [])
        # A pseudo parameter is never empty: no bucket ARN has a region.
        self.assertFits({"Fn::Sub": "arn:${AWS::Partition}:s3:${AWS::Region}::b"}, "s3", [], ["bucket"])

    def test_s3(self) -> None:
        self.assertFits("arn:aws:s3:::bucket/prefix/*", "s3", ["object"], ["bucket"])
        self.assertFits("arn:aws:s3:::bucket", "s3", ["bucket"], ["object"])
        self.assertFits({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Root}/*"}, "s3", ["object"], [])

    def test_identitystore(self) -> None:
        self.assertFits("arn:aws:identitystore:::user/*", "identitystore", ["User", "AllUsers"], ["Group", "Identitystore"])
        self.assertFits("arn:aws:identitystore:::membership/*", "identitystore", ["GroupMembership", "AllGroupMemberships"], ["User"])
        store = {"Fn::Sub": "arn:${AWS::Partition}:identitystore::${AWS::AccountId}:identitystore/${IdentityStoreId}"}
        self.assertFits(store, "identitystore", ["Identitystore"], ["User", "AllUsers"])
        # A named user is no listing of all users (the format's "*" is literal).
        self.assertFits("arn:aws:identitystore:::user/9067", "identitystore", ["User"], ["AllUsers"])

    def test_getatt_and_parameters(self) -> None:
        # A log group's Arn ends in ":*", which reaches its log streams.
        self.assertFits({"Fn::GetAtt": ["Logs", "Arn"]}, "logs", ["log-stream", "log-group"], [])
        self.assertFits({"Fn::GetAtt": "Queue.Arn"}, "sqs", ["queue"], [])
        self.assertFits({"Fn::GetAtt": "Queue.Arn"}, "logs", [], ["log-group", "log-stream"])
        self.assertFits({"Ref": "Key"}, "kms", ["key"], ["alias"])
        self.assertFits({"Fn::Split": [",", {"Ref": "Roles"}]}, "iam", ["role"], ["user"])
        self.assertFits({"Fn::Split": [",", {"Ref": "Roles"}]}, "sts", ["role"], [])

    def test_star_fits_every_type(self) -> None:
        self.assertTrue(self.fit("*", "transfer", "user"))

    def test_what_cannot_be_read(self) -> None:
        for value in (
            {"Ref": "Anything"},
            {"Ref": "Queue"},
            {"Fn::GetAtt": "Topic.TopicArn"},
            {"Fn::Sub": "${QueueArn}"},
            {"Fn::Sub": "arn:aws:${Service}:us-east-1:123456789012:x"},
            {"Fn::Join": ["", ["arn:aws:sqs:us-east-1:123456789012:", "q"]]},
            "queue",
        ):
            with self.subTest(value):
                with self.assertRaises(self.rules.Unreadable):
                    self.rules.resolve(self.cfn, value)


if __name__ == "__main__":
    unittest.main()
