"""The template's EventBridge rule patterns, held against the sample events through moto.

Every rule of template.yaml that has an event pattern (the SAM function's
EventBridgeRule events and the plain AWS::Events::Rule resources) is put on moto's
EventBridge with an SQS queue of its own as target; every EventBridge sample of
events/ is put on the bus, and each must reach exactly the rule meant for it (the
table EXPECTED) and no other. Events built here that no rule may take (a Transfer
DeleteUser, an Identity Store CreateUser, an Okta sign-in, another source) must reach
none.

Parameters are the template's defaults, except those that make every conditional rule
exist (PARAMETERS below): the test sees the rules a deployment with a directory has.

Run against a moto_server (scripts/test.sh starts one and exports MOTO_ENDPOINT):

    MOTO_ENDPOINT=http://127.0.0.1:PORT .venv/bin/python -m unittest discover -s tests/eventbridge -v

Without MOTO_ENDPOINT the tests that need moto fail (they never skip silently).
Needs boto3 and PyYAML (both come with moto[server]).
"""

import copy
import json
import os
import time
import unittest
import uuid
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"

# The samples that are EventBridge events (whole envelopes), by file-name prefix.
EVENTBRIDGE_PREFIXES = ("eventbridge-", "cloudtrail-", "directory-")

OKTA_BUS = "aws.partner/okta.com/acme/transfer-chroot"

# Template defaults, except: a store (the directory rules exist) and an Okta partner bus
# (the Okta rule exists). The store id is the one events/DIRECTORY-SOURCES.md uses.
PARAMETERS = {
    "IdentityStoreId": "d-9067a1b2c3",
    "OktaEventBusName": OKTA_BUS,
}

# Sample file-name prefix -> the one rule that sample is for. The longest matching
# prefix wins; every EventBridge sample must match one, so a new sample without an
# expectation fails (test_every_sample_has_an_expectation).
EXPECTED = {
    "eventbridge-": "DirectoryEvents",  # the directory sync's own events
    "cloudtrail-": "TransferApiCalls",  # Transfer drift (CloudTrail)
    "directory-identitystore-": "IdentityStoreEvents",  # Identity Store notifications
    "directory-cloudtrail-": "IdentityStoreApiCalls",  # Create/DeleteGroupMembership
    "directory-scim-": "IdentityStoreApiCalls",  # SCIM PatchGroup
    "directory-okta-": "OktaMembershipEvents",  # Okta System Log, partner bus
}

# The rules that must have a schedule and no pattern.
SCHEDULES = {"FleetAudit"}


# --- template.yaml, with the CloudFormation short forms ----------------------------


class _CfnLoader(yaml.SafeLoader):
    """PyYAML's safe loader, taking !Ref, !Sub, !GetAtt, ... as their long forms."""


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {"Fn::" + suffix: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template():
    with open(TEMPLATE, encoding="utf-8") as f:
        return yaml.load(f, Loader=_CfnLoader)


def parameter_values(template, overrides):
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise AssertionError(f"parameter {name} has no default (StackSets need one)")
    unknown = set(overrides) - set(values)
    if unknown:
        raise AssertionError(f"overrides of parameters the template does not have: {unknown}")
    return values


def _evaluate(value, params, conditions, template):
    """The intrinsic functions conditions and patterns use, over parameter values."""
    if isinstance(value, list):
        return [_evaluate(v, params, conditions, template) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            if arg in params:
                return params[arg]
            raise AssertionError(f"Ref {arg!r} is not a parameter: cannot resolve it here")
        if key == "Condition":
            return condition(arg, params, conditions, template)
        if key == "Fn::Equals":
            a, b = (_evaluate(v, params, conditions, template) for v in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not _evaluate(arg[0], params, conditions, template)
        if key == "Fn::And":
            return all(_evaluate(v, params, conditions, template) for v in arg)
        if key == "Fn::Or":
            return any(_evaluate(v, params, conditions, template) for v in arg)
        if key == "Fn::Sub" and isinstance(arg, str):
            text = arg
            for name, v in params.items():
                text = text.replace("${" + name + "}", v)
            return text
        if key == "Fn::Split":
            sep, text = arg[0], _evaluate(arg[1], params, conditions, template)
            return text.split(sep)
        if key == "Fn::Select":
            index = int(_evaluate(arg[0], params, conditions, template))
            return _evaluate(arg[1], params, conditions, template)[index]
        if key.startswith("Fn::"):
            raise AssertionError(f"{key} cannot be resolved here: {value}")
    return {k: _evaluate(v, params, conditions, template) for k, v in value.items()}


def condition(name, params, conditions, template):
    if name not in conditions:
        conditions[name] = bool(
            _evaluate(template["Conditions"][name], params, conditions, template)
        )
    return conditions[name]


def collect_rules(template, params):
    """{name: {"bus", "pattern", "schedule", "condition"}} of every EventBridge rule that
    exists with these parameters: the SAM functions' EventBridgeRule (and legacy
    CloudWatchEvent) and Schedule events, and the AWS::Events::Rule resources."""
    conditions = {}
    rules = {}

    def exists(resource):
        name = resource.get("Condition")
        return name is None or condition(name, params, conditions, template)

    for logical_id, resource in template["Resources"].items():
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and exists(resource):
            for event_name, event in resource["Properties"].get("Events", {}).items():
                props = event.get("Properties", {})
                if event["Type"] in ("EventBridgeRule", "CloudWatchEvent"):
                    rules[event_name] = {
                        "bus": _evaluate(props.get("EventBusName", "default"), params, conditions, template),
                        "pattern": _evaluate(props.get("Pattern"), params, conditions, template),
                        "schedule": None,
                        "condition": None,
                    }
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    rules[event_name] = {
                        "bus": "default",
                        "pattern": props.get("Pattern") or props.get("EventPattern"),
                        "schedule": props.get("Schedule") or props.get("ScheduleExpression"),
                        "condition": None,
                    }
        elif kind == "AWS::Events::Rule" and exists(resource):
            props = resource["Properties"]
            rules[logical_id] = {
                "bus": _evaluate(props.get("EventBusName", "default"), params, conditions, template),
                "pattern": _evaluate(props.get("EventPattern"), params, conditions, template),
                "schedule": props.get("ScheduleExpression"),
                "condition": resource.get("Condition"),
            }
    return rules


def eventbridge_samples():
    return sorted(
        p for p in EVENTS.glob("*.json") if p.name.startswith(EVENTBRIDGE_PREFIXES)
    )


def expected_rule(sample_name):
    matches = [prefix for prefix in EXPECTED if sample_name.startswith(prefix)]
    if not matches:
        return None
    return EXPECTED[max(matches, key=len)]


def put_entry(event):
    """A PutEvents entry carrying what the sample carries (moto keeps each field)."""
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event.get("resources", []),
    }
    if "time" in event:
        entry["Time"] = event["time"]
    return entry


def _sample(name):
    with open(EVENTS / name, encoding="utf-8") as f:
        return json.load(f)


def negative_events():
    """Events no rule may take: near misses of each rule, built from the samples."""
    transfer_delete = _sample("cloudtrail-update-user.json")
    transfer_delete["detail"]["eventName"] = "DeleteUser"

    store_create_user = _sample("directory-cloudtrail-create-group-membership.json")
    store_create_user["detail"]["eventName"] = "CreateUser"
    store_create_user["detail"]["requestParameters"] = {
        "identityStoreId": "d-9067a1b2c3",
        "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }

    scim_patch_user = _sample("directory-scim-patch-group.json")
    scim_patch_user["detail"]["eventName"] = "PatchUser"

    okta_sign_in = _sample("directory-okta-membership-add.json")
    okta_sign_in["detail"]["eventType"] = "user.session.start"
    okta_sign_in["detail"]["displayMessage"] = "User login to Okta"

    # The directory sync's detail-type from a source the stack was not told about.
    other_source = _sample("eventbridge-membership-changed.json")
    other_source["source"] = "acme.other-sync"

    # Okta's membership event, as if another partner (or a custom source) sent it.
    not_okta = _sample("directory-okta-membership-add.json")
    not_okta["source"] = "acme.okta-lookalike"

    return {
        "transfer-cloudtrail-DeleteUser": transfer_delete,
        "identitystore-cloudtrail-CreateUser": store_create_user,
        "identitystore-scim-PatchUser": scim_patch_user,
        "okta-user.session.start": okta_sign_in,
        "directory-event-from-another-source": other_source,
        "okta-membership-from-another-source": not_okta,
    }


# --- checks that need only the template and the samples ---------------------------


class TemplateRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.params = parameter_values(cls.template, PARAMETERS)
        cls.rules = collect_rules(cls.template, cls.params)

    def test_every_sample_has_an_expectation(self):
        samples = eventbridge_samples()
        self.assertTrue(samples, "no EventBridge sample found in events/")
        for path in samples:
            with self.subTest(sample=path.name):
                self.assertIsNotNone(
                    expected_rule(path.name),
                    f"{path.name}: no entry of EXPECTED names the rule this sample is for",
                )

    def test_every_envelope_in_events_is_tested(self):
        # A whole EventBridge event saved under another prefix would escape the table.
        tested = {p.name for p in eventbridge_samples()}
        for path in sorted(EVENTS.glob("*.json")):
            with open(path, encoding="utf-8") as f:
                event = json.load(f)
            if isinstance(event, dict) and "detail-type" in event and "source" in event:
                with self.subTest(sample=path.name):
                    self.assertIn(path.name, tested, f"{path.name} is an EventBridge event: name it {EVENTBRIDGE_PREFIXES}")

    def test_the_expected_rules_are_the_template_rules(self):
        with_pattern = {n for n, r in self.rules.items() if r["pattern"] is not None}
        self.assertEqual(set(EXPECTED.values()), with_pattern)

    def test_the_schedule_has_no_pattern(self):
        for name in SCHEDULES:
            with self.subTest(rule=name):
                self.assertIn(name, self.rules)
                self.assertIsNone(self.rules[name]["pattern"], f"{name} is a schedule: it must match no event")
                self.assertTrue(self.rules[name]["schedule"], f"{name} has no schedule expression")
        schedules = {n for n, r in self.rules.items() if r["schedule"]}
        self.assertEqual(SCHEDULES, schedules)

    def test_buses(self):
        # The Identity Store and CloudTrail rules listen on the default bus (where AWS
        # delivers them); Okta's partner events arrive only on the partner bus.
        for name in ("TransferApiCalls", "IdentityStoreEvents", "IdentityStoreApiCalls"):
            self.assertEqual("default", self.rules[name]["bus"], name)
        self.assertEqual(OKTA_BUS, self.rules["OktaMembershipEvents"]["bus"])
        self.assertEqual(self.params["EventBusName"], self.rules["DirectoryEvents"]["bus"])

    def test_the_directory_rules_exist_only_with_a_store(self):
        defaults = collect_rules(self.template, parameter_values(self.template, {}))
        for name in ("IdentityStoreEvents", "IdentityStoreApiCalls", "OktaMembershipEvents"):
            self.assertIn(name, self.rules)
            self.assertNotIn(name, defaults, f"{name} exists without IdentityStoreId")
        store_only = collect_rules(
            self.template, parameter_values(self.template, {"IdentityStoreId": "d-9067a1b2c3"})
        )
        self.assertIn("IdentityStoreEvents", store_only)
        self.assertNotIn("OktaMembershipEvents", store_only, "the Okta rule exists without OktaEventBusName")

    def test_plain_rules_are_wired_like_the_sam_rules(self):
        # Each AWS::Events::Rule: one target, the function, with the SAM rules' retry
        # policy and dead-letter queue; a Lambda permission for that rule under the same
        # condition; and a place in the dead-letter queue's policy.
        resources = self.template["Resources"]
        dlq_sources = json.dumps(
            resources["EventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
        )
        permissions = {
            json.dumps(r["Properties"]["SourceArn"]): r
            for r in resources.values()
            if r.get("Type") == "AWS::Lambda::Permission"
        }
        for name, resource in resources.items():
            if resource.get("Type") != "AWS::Events::Rule" or "EventPattern" not in resource["Properties"]:
                continue
            with self.subTest(rule=name):
                targets = resource["Properties"]["Targets"]
                self.assertEqual(1, len(targets))
                target = targets[0]
                self.assertEqual({"Fn::GetAtt": ["TransferChrootFunction", "Arn"]}, target["Arn"])
                self.assertEqual(
                    {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}, target["RetryPolicy"]
                )
                self.assertEqual(
                    {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}, target["DeadLetterConfig"]
                )
                arn = {"Fn::GetAtt": [name, "Arn"]}
                permission = permissions.get(json.dumps(arn))
                self.assertIsNotNone(permission, f"no AWS::Lambda::Permission with SourceArn {name}.Arn")
                self.assertEqual("events.amazonaws.com", permission["Properties"]["Principal"])
                self.assertEqual("lambda:InvokeFunction", permission["Properties"]["Action"])
                self.assertEqual(resource.get("Condition"), permission.get("Condition"))
                self.assertIn(json.dumps(arn), dlq_sources, f"{name} may not park dead letters")


# --- the patterns through moto's EventBridge ---------------------------------------


class PatternsThroughMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        endpoint = os.environ.get("MOTO_ENDPOINT")
        if not endpoint:
            raise AssertionError(
                "MOTO_ENDPOINT is not set: start moto_server and export "
                "MOTO_ENDPOINT=http://127.0.0.1:PORT (scripts/test.sh does)"
            )
        kw = dict(
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        cls.events = boto3.client("events", **kw)
        cls.sqs = boto3.client("sqs", **kw)
        template = load_template()
        cls.rules = collect_rules(template, parameter_values(template, PARAMETERS))
        # Names of our own: the default bus is shared with whatever else uses this moto.
        cls.suffix = uuid.uuid4().hex[:8]
        cls.queues = {}  # rule name -> queue URL
        cls.rule_names = {}  # rule name -> name on moto
        try:
            for name, rule in cls.rules.items():
                if rule["pattern"] is None:
                    continue
                moto_name = f"tc-{name}-{cls.suffix}"
                url = cls.sqs.create_queue(QueueName=moto_name)["QueueUrl"]
                cls.queues[name] = url
                arn = cls.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                # Every rule on moto's default bus, whatever its bus in the template:
                # moto cannot put a rule on a bus whose name contains "/" (it keeps the
                # text after the last "/" and answers "Event bus ... does not exist"), so
                # the Okta rule, which the template puts on the partner bus
                # aws.partner/okta.com/<org>/<name>, is tested here on the default bus
                # (test_buses checks the template's bus).
                cls.events.put_rule(
                    Name=moto_name,
                    EventPattern=json.dumps(rule["pattern"]),
                    State="ENABLED",
                )
                cls.events.put_targets(Rule=moto_name, Targets=[{"Id": "queue", "Arn": arn}])
                cls.rule_names[name] = moto_name
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for moto_name in cls.rule_names.values():
            try:
                cls.events.remove_targets(Rule=moto_name, Ids=["queue"])
                cls.events.delete_rule(Name=moto_name)
            except Exception:
                pass
        for url in cls.queues.values():
            try:
                cls.sqs.delete_queue(QueueUrl=url)
            except Exception:
                pass

    def put(self, event):
        answer = self.events.put_events(Entries=[put_entry(event)])
        self.assertEqual(0, answer["FailedEntryCount"], answer["Entries"])
        return answer["Entries"][0]["EventId"]

    def reached(self, event_id, expect=None):
        """The rules whose queue received the event with this id (others' messages are
        left out). moto delivers during PutEvents; the wait is only for the expected
        rule, so a slower moto cannot turn a delivery into a miss."""
        deadline = time.monotonic() + (5.0 if expect else 0.3)
        found = {}
        while True:
            for name, url in self.queues.items():
                answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                for message in answer.get("Messages", []):
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    body = json.loads(message["Body"])
                    if body.get("id") == event_id:
                        found[name] = body
            if (expect and expect in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def test_each_sample_reaches_its_rule_and_no_other(self):
        samples = eventbridge_samples()
        self.assertTrue(samples)
        for path in samples:
            with self.subTest(sample=path.name):
                expect = expected_rule(path.name)
                self.assertIsNotNone(expect, f"{path.name} has no entry in EXPECTED")
                with open(path, encoding="utf-8") as f:
                    event = json.load(f)
                found = self.reached(self.put(event), expect)
                self.assertEqual([expect], sorted(found), f"{path.name} reached {sorted(found) or 'no rule'}")
                # What the rule delivers is the sample (moto leaves out "account").
                body = found[expect]
                self.assertEqual(event["detail"], body["detail"])
                self.assertEqual(event["source"], body["source"])
                self.assertEqual(event["detail-type"], body["detail-type"])
                self.assertEqual(event.get("resources", []), body["resources"])

    def test_every_rule_is_reached_by_a_sample(self):
        # A rule no sample reaches is a rule no test holds to its purpose.
        covered = {expected_rule(p.name) for p in eventbridge_samples()} - {None}
        self.assertEqual(set(), set(self.queues) - covered, "rules no sample is meant for")

    def test_near_misses_reach_no_rule(self):
        for label, event in negative_events().items():
            with self.subTest(event=label):
                found = self.reached(self.put(event))
                self.assertEqual([], sorted(found), f"{label} reached {sorted(found)}")

    def test_the_negatives_are_deliverable(self):
        # The negatives above prove something only if moto delivers such events at all:
        # a catch-all rule must receive each of them.
        moto_name = f"tc-catch-all-{self.suffix}"
        url = self.sqs.create_queue(QueueName=moto_name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events.put_rule(Name=moto_name, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        self.events.put_targets(Rule=moto_name, Targets=[{"Id": "queue", "Arn": arn}])
        try:
            for label, event in negative_events().items():
                with self.subTest(event=label):
                    event_id = self.put(event)
                    deadline = time.monotonic() + 5.0
                    ids = set()
                    while event_id not in ids and time.monotonic() < deadline:
                        for m in self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                            ids.add(json.loads(m["Body"]).get("id"))
                        time.sleep(0.05)
                    self.assertIn(event_id, ids, f"moto did not deliver {label} to a catch-all rule")
                    # Drain the rule queues of what this event reached (nothing, per the
                    # test above; left over it would only be ignored by id).
                    self.reached(event_id)
        finally:
            self.events.remove_targets(Rule=moto_name, Ids=["queue"])
            self.events.delete_rule(Name=moto_name)
            self.sqs.delete_queue(QueueUrl=url)


if __name__ == "__main__":
    unittest.main()
