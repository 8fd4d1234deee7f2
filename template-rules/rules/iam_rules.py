"""Least-privilege IAM rules for transfer-chroot's templates (cfn-lint custom rules).

Loaded with ``cfn-lint --append-rules template-rules/rules``. cfn-lint (since 1.54)
no longer runs the SAM translator: the rules see the SAM source as written, with
``Globals`` merged into the resources. So they read ``AWS::Serverless::Function``
``Policies`` and ``Role`` themselves, next to the plain IAM resources, and a role
SAM would generate is a finding of its own (E9106).

Every policy statement is read wherever it is written (function ``Policies``, role
``Policies``, standalone and resource policies), and a statement or list element
under ``Fn::If`` counts once per branch: a check that holds for every branch holds
whatever the parameters are. A policy the rules cannot read is a finding (E9105),
never a pass.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, NamedTuple

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SOURCE = "template-rules/README.md"

# The Transfer operations the function calls (src/transfer/sdk.rs), each with the
# resource type the Service Authorization Reference names for it: "user" is
# user/<server>/<name>, "server" is server/<server>. Accesses have no ARN and authorise
# on their server; so do the listings of a server's users and accesses (the audit).
TRANSFER_ACTIONS = {
    "transfer:DescribeUser": "user",
    "transfer:UpdateUser": "user",
    "transfer:DescribeAccess": "server",
    "transfer:UpdateAccess": "server",
    "transfer:DescribeServer": "server",
    "transfer:ListUsers": "server",
    "transfer:ListAccesses": "server",
    # Finding the servers that carry SERVER_TAG: no resource type, "*" only (E9102).
    "transfer:ListServers": "account",
}

# The one condition under which a Transfer statement may cover every server of the
# account: SERVER_TAG without a list, where the servers are known only at run time and
# the function itself refuses the untagged ones.
TAGGED_ONLY_CONDITION = "ServersByTagOnly"

# What each resource type's ARN must look like, for the messages.
RESOURCE_SHAPES = {"user": "user/<server>/*", "server": "server/<server>", "account": '"*"'}

# The only service the function may pass a role to.
PASSED_TO_SERVICE = "transfer.amazonaws.com"

# Actions the Service Authorization Reference lists with no resource type: IAM can
# grant them on "*" only. E9102 allows "*" for a statement of these alone (Lambda
# sending the function's X-Ray segments, the template's Tracing); any other action
# beside them, or on its own, still needs named resources.
ONLY_ON_ANY_RESOURCE = frozenset(
    {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "transfer:ListServers"}
)

# Values a role parameter must refuse: each would let the function pass any role.
WILDCARD_ROLES = (
    "*",
    "arn:aws:iam::111122223333:role/*",
    "arn:aws:iam::111122223333:role/sftp-*",
    "arn:aws:iam::*:role/sftp-user",
)

# Resources whose PolicyDocument holds statements.
POLICY_DOCUMENT_TYPES = (
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::RolePolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Events::EventBusPolicy",
)

Path = list  # of str | int, as cfn-lint reports it


# ---------------------------------------------------------------------------
# Intrinsics and conditions.
# ---------------------------------------------------------------------------


def intrinsic(value: Any, key: str) -> Any:
    """The argument of the one-key intrinsic ``{key: x}``, if ``value`` is one."""
    if isinstance(value, dict) and len(value) == 1 and key in value:
        return value[key]
    return None


def ref_name(value: Any) -> str | None:
    name = intrinsic(value, "Ref")
    return name if isinstance(name, str) else None


def branches(value: Any, path: Path) -> Iterator[tuple[Any, Path]]:
    """Every value ``value`` can take: both branches of ``Fn::If``, none for
    ``AWS::NoValue`` (or for a missing field, None)."""
    if value is None:
        return
    args = intrinsic(value, "Fn::If")
    if isinstance(args, list) and len(args) == 3:
        for i in (1, 2):
            yield from branches(args[i], path + ["Fn::If", i])
        return
    if ref_name(value) == "AWS::NoValue":
        return
    yield value, path


def may_be_absent(value: Any) -> bool:
    """True if some branch of ``value`` is ``AWS::NoValue``."""
    args = intrinsic(value, "Fn::If")
    if isinstance(args, list) and len(args) == 3:
        return may_be_absent(args[1]) or may_be_absent(args[2])
    return ref_name(value) == "AWS::NoValue"


def elements(value: Any, path: Path) -> Iterator[tuple[Any, Path]]:
    """A string-or-list field (Action, Resource, Statement, Policies), element by
    element, every branch of every ``Fn::If``."""
    for v, p in branches(value, path):
        if isinstance(v, list):
            for i, item in enumerate(v):
                yield from branches(item, p + [i])
        else:
            yield v, p


def sub_text(value: Any) -> str | None:
    """The template string of a ``Fn::Sub``, with its literal variables filled in
    (both the string and the ``[string, {vars}]`` form)."""
    sub = intrinsic(value, "Fn::Sub")
    if isinstance(sub, str):
        return sub
    if isinstance(sub, list) and sub and isinstance(sub[0], str):
        text = sub[0]
        if len(sub) > 1 and isinstance(sub[1], dict):
            for name, var in sub[1].items():
                if isinstance(var, str):
                    text = text.replace("${" + name + "}", var)
        return text
    return None


def text_of(value: Any) -> str | None:
    """A literal string, or the template of a ``Fn::Sub``."""
    return value if isinstance(value, str) else sub_text(value)


def resources(cfn: Any) -> Iterator[tuple[str, str, dict]]:
    """(logical id, type, properties) of every resource."""
    section = cfn.template.get("Resources")
    if not isinstance(section, dict):
        return
    for name, resource in section.items():
        if not isinstance(resource, dict):
            continue
        props = resource.get("Properties")
        yield name, str(resource.get("Type", "")), props if isinstance(props, dict) else {}


def parameter_admits(cfn: Any, name: str, value: str) -> bool:
    """Whether parameter ``name`` accepts ``value``; False if ``name`` is no
    parameter (a resource's Ref)."""
    params = cfn.template.get("Parameters")
    param = params.get(name) if isinstance(params, dict) else None
    if not isinstance(param, dict):
        return False
    pattern = param.get("AllowedPattern")
    if isinstance(pattern, str):
        try:
            # CloudFormation anchors AllowedPattern at both ends.
            return re.fullmatch(pattern, value) is not None
        except re.error:
            return True
    allowed = param.get("AllowedValues")
    if isinstance(allowed, list):
        return any("*" in str(v) or str(v) == value for v in allowed)
    return True


# ---------------------------------------------------------------------------
# Collecting the statements.
# ---------------------------------------------------------------------------


class Statement(NamedTuple):
    body: dict
    path: Path
    where: str


class Finding(NamedTuple):
    path: Path
    message: str


def _local_role(cfn: Any, role: Any) -> bool:
    """Whether ``role`` (a function's Role) is an AWS::IAM::Role of this template."""
    getatt = intrinsic(role, "Fn::GetAtt")
    if isinstance(getatt, list) and getatt:
        name = getatt[0]
    elif isinstance(getatt, str):
        name = getatt.split(".", 1)[0]
    else:
        name = ref_name(role)
    section = cfn.template.get("Resources")
    target = section.get(name) if isinstance(section, dict) and isinstance(name, str) else None
    return isinstance(target, dict) and target.get("Type") == "AWS::IAM::Role"


def collect(cfn: Any) -> tuple[list[Statement], list[Finding]]:
    """Every statement of the template, and a finding for each policy the rules
    cannot see into (E9105)."""
    statements: list[Statement] = []
    blind: list[Finding] = []

    def document(doc: Any, path: Path, where: str) -> None:
        for d, p in branches(doc, path):
            if not isinstance(d, dict):
                blind.append(
                    Finding(
                        p,
                        f"{where}: a policy document that is not a mapping cannot be checked; write it as YAML",
                    )
                )
                continue
            listed = d.get("Statement")
            if listed is None:
                continue
            for i, (body, bp) in enumerate(elements(listed, p + ["Statement"])):
                if isinstance(body, dict):
                    statements.append(Statement(body, bp, f"{where} statement {i}"))
                else:
                    blind.append(
                        Finding(bp, f"{where} statement {i}: not a mapping, it cannot be checked")
                    )

    for name, rtype, props in resources(cfn):
        base: Path = ["Resources", name, "Properties"]
        if rtype == "AWS::Serverless::Function":
            for i, (policy, p) in enumerate(elements(props.get("Policies"), base + ["Policies"])):
                where = f"{name} Policies[{i}]"
                if isinstance(policy, dict) and "Statement" in policy:
                    document(policy, p, where)
                else:
                    blind.append(
                        Finding(
                            p,
                            f"{where}: a managed policy or SAM policy template cannot be checked; write the statements inline",
                        )
                    )
            role = props.get("Role")
            if role is not None:
                for r, p in branches(role, base + ["Role"]):
                    if not _local_role(cfn, r):
                        blind.append(
                            Finding(
                                p,
                                f"{name}: Role is not an AWS::IAM::Role of this template, its policies cannot be checked",
                            )
                        )
        elif rtype == "AWS::IAM::Role":
            for i, (policy, p) in enumerate(elements(props.get("Policies"), base + ["Policies"])):
                if isinstance(policy, dict) and "PolicyDocument" in policy:
                    document(
                        policy["PolicyDocument"], p + ["PolicyDocument"], f"{name} Policies[{i}]"
                    )
            managed = props.get("ManagedPolicyArns")
            if managed is not None and managed != []:
                blind.append(
                    Finding(
                        base + ["ManagedPolicyArns"],
                        f"{name}: ManagedPolicyArns cannot be checked; write the statements inline",
                    )
                )
        elif rtype in POLICY_DOCUMENT_TYPES:
            if "PolicyDocument" in props:
                document(props["PolicyDocument"], base + ["PolicyDocument"], name)
    return statements, blind


def is_allow(body: dict) -> bool:
    """Allow statements, and any whose Effect is not a literal (it may be Allow)."""
    effect = body.get("Effect")
    return effect == "Allow" or not isinstance(effect, str)


def conditions_on(cfn: Any, path: Path) -> list[tuple[str, int]]:
    """The ``Fn::If`` conditions a value at ``path`` sits under, each with its branch
    (1: true, 2: false), read from the template along the path."""
    found = []
    node: Any = cfn.template
    for i, key in enumerate(path):
        if key == "Fn::If" and i + 1 < len(path) and isinstance(node, dict):
            args = node.get("Fn::If")
            if isinstance(args, list) and args and isinstance(args[0], str):
                found.append((args[0], path[i + 1]))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    return found


def allow_statements(cfn: Any) -> Iterator[Statement]:
    statements, _ = collect(cfn)
    return (s for s in statements if is_allow(s.body))


def actions(s: Statement) -> Iterator[tuple[Any, Path]]:
    return elements(s.body.get("Action"), s.path + ["Action"])


def literal_actions(s: Statement) -> list[str]:
    return [a for a, _ in actions(s) if isinstance(a, str)]


# ---------------------------------------------------------------------------
# The rules.
# ---------------------------------------------------------------------------


class NoWildcardActions(CloudFormationLintRule):
    """An Allow statement names each action it grants.

    ``*``, ``service:*`` or ``transfer:Update*`` grant actions nobody reviewed,
    including ones the service adds later; ``NotAction`` is an allow-list turned
    inside out (everything but ...). A statement whose actions are not literal
    strings cannot be checked, so it fails too.
    """

    id = "E9101"
    shortdesc = "No wildcard actions and no NotAction in Allow statements"
    description = "Allow statements list literal actions: no '*' or '?' in an action, no NotAction, no missing Action"
    source_url = SOURCE
    tags = ["iam", "least-privilege"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for s in allow_statements(cfn):
            if "NotAction" in s.body:
                found.append(
                    RuleMatch(
                        s.path + ["NotAction"],
                        f"{s.where}: NotAction grants every other action; list the actions",
                    )
                )
            elif "Action" not in s.body:
                found.append(RuleMatch(s.path, f"{s.where}: Allow statement without Action"))
            for a, p in actions(s):
                if not isinstance(a, str):
                    found.append(
                        RuleMatch(
                            p,
                            f"{s.where}: action {a!r} is not a literal string and cannot be checked",
                        )
                    )
                elif "*" in a or "?" in a:
                    found.append(
                        RuleMatch(p, f"{s.where}: wildcard action {a!r}; name each action")
                    )
        return found


class NoStarResource(CloudFormationLintRule):
    """An Allow statement names the resources it grants on.

    ``Resource: "*"`` grants the actions on every resource of the account, and
    ``NotResource`` on everything but the ones listed. A statement without
    ``Resource`` is malformed for identity policies and means "this resource" only
    implicitly for resource policies; both are refused so every grant is explicit.

    The one exception: a statement whose actions are all literal and all in
    ``ONLY_ON_ANY_RESOURCE`` (X-Ray's PutTraceSegments and PutTelemetryRecords, which
    have no resource type, so "*" is the only resource IAM can grant them on). Mixed
    with any other action the statement is refused, so "*" never reaches another
    action through them.
    """

    id = "E9102"
    shortdesc = "No Resource '*' and no NotResource in Allow statements"
    description = 'Allow statements name their resources: no Resource "*", no NotResource, no missing Resource'
    source_url = SOURCE
    tags = ["iam", "least-privilege"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for s in allow_statements(cfn):
            if "NotResource" in s.body:
                found.append(
                    RuleMatch(
                        s.path + ["NotResource"],
                        f"{s.where}: NotResource grants on every other resource",
                    )
                )
            if "Resource" not in s.body:
                if "NotResource" not in s.body:
                    found.append(RuleMatch(s.path, f"{s.where}: Allow statement without Resource"))
                continue
            acts = [a for a, _ in actions(s)]
            resourceless = bool(acts) and all(
                isinstance(a, str) and a in ONLY_ON_ANY_RESOURCE for a in acts
            )
            for r, p in elements(s.body["Resource"], s.path + ["Resource"]):
                text = text_of(r)
                if text is not None and text.strip() == "*" and not resourceless:
                    found.append(
                        RuleMatch(
                            p,
                            f'{s.where}: Resource "*"; name the resources (only '
                            f"{', '.join(sorted(ONLY_ON_ANY_RESOURCE))} may be granted on "
                            '"*", in a statement of their own)',
                        )
                    )
        return found


class TransferScoped(CloudFormationLintRule):
    """Transfer permissions are the ones the function calls, on the allowed servers.

    The function only calls DescribeUser, UpdateUser, DescribeAccess, UpdateAccess,
    DescribeServer, ListUsers, ListAccesses and ListServers. Each is granted on the
    resource type the Service Authorization Reference names for it: a user's actions
    on ``user/<server>/*``; accesses (which have no ARN), the server itself and the
    listings of its users and accesses on ``server/<server>``; ListServers, which has
    none, on ``"*"`` alone. Always with a named server, never a wildcard one, with one
    exception: under ``Fn::If [ServersByTagOnly, ...]`` (SERVER_TAG without a list:
    the servers are known only at run time, and the function refuses the untagged
    ones) the statement may cover every server, ``user/*/*`` or ``server/*`` exactly.
    Actions of different resource types sit in separate statements, or each would
    also be granted on the other's resource type (ListUsers, a server action despite
    its name, does not belong with DescribeUser).
    """

    id = "E9103"
    shortdesc = "Transfer actions only the ones the function calls, on named servers"
    description = (
        "transfer: actions are DescribeUser/UpdateUser on user/<server>/*"
        " and DescribeAccess/UpdateAccess/DescribeServer/ListUsers/ListAccesses"
        " on server/<server>"
    )
    source_url = SOURCE
    tags = ["iam", "least-privilege", "transfer"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        kind_of = {a.lower(): kind for a, kind in TRANSFER_ACTIONS.items()}
        for s in allow_statements(cfn):
            transfer = [a for a in literal_actions(s) if a.lower().startswith("transfer:")]
            if not transfer:
                continue
            for a in transfer:
                if a.lower() not in kind_of:
                    found.append(
                        RuleMatch(
                            s.path + ["Action"],
                            f"{s.where}: {a} is not one of {', '.join(TRANSFER_ACTIONS)}",
                        )
                    )
            # The resource types the statement's actions authorise on. An action the
            # function does not call (a finding above) is given the type its name
            # suggests (...User: user; ...Access, ...Server: server), so that its
            # resources are still judged; a wildcard suggests none, and then no
            # resource fits.
            kinds = {k for k in (_resource_kind(a, kind_of) for a in transfer) if k}
            if len(kinds) > 1:
                found.append(
                    RuleMatch(
                        s.path + ["Action"],
                        f"{s.where}: user actions and server actions (accesses, the server, its"
                        " listings) share a statement, so both get both resource types",
                    )
                )
            listed = list(elements(s.body.get("Resource"), s.path + ["Resource"]))
            if not listed:
                found.append(RuleMatch(s.path, f"{s.where}: Transfer actions without Resource"))
            wants_user = "user" in kinds
            wants_server = "server" in kinds
            if kinds == {"account"}:
                for r, p in listed:
                    if text_of(r) != "*":
                        found.append(
                            RuleMatch(p, f"{s.where}: transfer:ListServers has no resource type: \"*\" only")
                        )
                continue
            expected = RESOURCE_SHAPES["user" if wants_user else "server"]
            tagged_only = (TAGGED_ONLY_CONDITION, 1) in conditions_on(cfn, s.path)
            for r, p in listed:
                arn = text_of(r)
                if arn is None:
                    found.append(
                        RuleMatch(p, f"{s.where}: resource {r!r} is not an ARN string or Fn::Sub")
                    )
                    continue
                _, sep, rest = arn.partition(":transfer:")
                if not sep:
                    found.append(RuleMatch(p, f"{s.where}: {arn} is not a Transfer ARN"))
                    continue
                # rest = "<region>:<account>:<type>/<server>[/<user>]"; the region and
                # account may be ${AWS::Region} and ${AWS::AccountId}, colons and all.
                tail = rest.rsplit(":", 1)[-1] if ":" in rest else ""
                parts = tail.split("/")
                kind = parts[0]
                server = parts[1] if len(parts) > 1 else ""
                named = server != "" and "*" not in server and "?" not in server
                # Every server, only under the tag-only condition and only as "*".
                every = tagged_only and server == "*" and all(x == "*" for x in parts[1:])
                if kind == "user":
                    ok = wants_user and (named or (every and len(parts) == 3))
                elif kind == "server":
                    ok = wants_server and (named or every) and len(parts) == 2
                else:
                    ok = False
                if not ok:
                    found.append(
                        RuleMatch(p, f"{s.where}: {arn} is not a {expected} ARN naming one server")
                    )
        return found


def _resource_kind(action: str, kind_of: dict[str, str]) -> str | None:
    """The resource type ``action`` authorises on: TRANSFER_ACTIONS's, else a guess
    from the name's ending; None for a wildcard or another name."""
    a = action.lower()
    if a in kind_of:
        return kind_of[a]
    if a.endswith("user"):
        return "user"
    if a.endswith(("access", "server")):
        return "server"
    return None


def _parameter_behind(value: Any) -> str | None:
    """``!Ref P`` or ``!Split [",", !Ref P]``: the parameter a resource list comes from."""
    name = ref_name(value)
    if name:
        return name
    split = intrinsic(value, "Fn::Split")
    if isinstance(split, list) and len(split) == 2:
        return ref_name(split[1])
    return None


def _passed_to_service(condition: Any) -> Any:
    equals = condition.get("StringEquals") if isinstance(condition, dict) else None
    if not isinstance(equals, dict):
        return None
    for key, value in equals.items():
        if isinstance(key, str) and key.lower() == "iam:passedtoservice":
            return value
    return None


class PassRoleScoped(CloudFormationLintRule):
    """iam:PassRole only to Transfer, and only for named roles.

    Setting a user's or access's Role passes that role to Transfer. Without
    ``StringEquals iam:PassedToService = transfer.amazonaws.com`` the function
    could hand the role to any service (EC2, Lambda: privilege escalation), and a
    wildcard role, literal or through a parameter that accepts one, would let it
    pass any role of the account.
    """

    id = "E9104"
    shortdesc = "iam:PassRole only with iam:PassedToService transfer.amazonaws.com, on named roles"
    description = "PassRole statements carry StringEquals iam:PassedToService and name roles without wildcards"
    source_url = SOURCE
    tags = ["iam", "least-privilege", "passrole"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for s in allow_statements(cfn):
            if not any(a.lower() == "iam:passrole" for a in literal_actions(s)):
                continue
            service = _passed_to_service(s.body.get("Condition"))
            only_transfer = service == PASSED_TO_SERVICE or (
                isinstance(service, list)
                and service != []
                and all(v == PASSED_TO_SERVICE for v in service)
            )
            if not only_transfer:
                found.append(
                    RuleMatch(
                        s.path + (["Condition"] if "Condition" in s.body else []),
                        f"{s.where}: iam:PassRole without Condition StringEquals iam:PassedToService = {PASSED_TO_SERVICE}",
                    )
                )
            for r, p in elements(s.body.get("Resource"), s.path + ["Resource"]):
                text = text_of(r)
                if text is not None and "*" in text:
                    found.append(RuleMatch(p, f"{s.where}: iam:PassRole on {text!r}"))
                param = _parameter_behind(r)
                if param is not None:
                    admitted = [v for v in WILDCARD_ROLES if parameter_admits(cfn, param, v)]
                    if admitted:
                        found.append(
                            RuleMatch(
                                p,
                                f"{s.where}: iam:PassRole on parameter {param}, which accepts a wildcard"
                                f" role ({admitted[0]!r}); give it an AllowedPattern that refuses '*'",
                            )
                        )
        return found


class PoliciesVisible(CloudFormationLintRule):
    """Every permission the template grants is written where the rules can read it.

    A managed policy (``AdministratorAccess``, ``ManagedPolicyArns``), a SAM policy
    template (``SQSPollerPolicy``: SAM expands it, often on ``*``), a role defined
    outside the template or a policy document given as a JSON string cannot be
    checked by E9101-E9104. An unchecked policy is a failure, not a pass.
    """

    id = "E9105"
    shortdesc = "No policy the rules cannot see into"
    description = (
        "No managed policies, SAM policy templates, foreign roles or opaque policy documents"
    )
    source_url = SOURCE
    tags = ["iam", "least-privilege"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        _, blind = collect(cfn)
        return [RuleMatch(f.path, f.message) for f in blind]


class ExplicitFunctionRole(CloudFormationLintRule):
    """A function runs with a role of this template, not one SAM generates.

    Without ``Role`` SAM creates one and attaches ``AWSLambdaBasicExecutionRole``
    and, per event source, managed policies such as ``AWSLambdaSQSQueueExecutionRole``
    that grant on ``"*"``. cfn-lint no longer runs the SAM translator, so the
    generated role is never seen by the other rules: it is refused here.
    """

    id = "E9106"
    shortdesc = "Functions have an explicit Role"
    description = "AWS::Serverless::Function sets Role, so SAM does not generate a role with managed policies on '*'"
    source_url = SOURCE
    tags = ["iam", "least-privilege", "sam"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for name, rtype, props in resources(cfn):
            if rtype != "AWS::Serverless::Function":
                continue
            role = props.get("Role")
            if role is None or may_be_absent(role):
                path: Path = ["Resources", name, "Properties"] + (
                    ["Role"] if role is not None else []
                )
                found.append(
                    RuleMatch(
                        path,
                        f'{name}: no explicit Role, so SAM generates one with managed policies on "*"',
                    )
                )
        return found
