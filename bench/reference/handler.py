"""COMPARISON ONLY -- not part of transfer-chroot.

The plain Python 3 + boto3 Lambda handler a team would otherwise write for the
direct command, used by bench/run.sh as the baseline the Rust function is measured
against (docs/PERFORMANCE.md). It does the same translation, idiomatically and
without shortcuts, so the comparison is fair:

  validate every field (collecting all errors) -> guardrails (servers, home roots,
  roles) -> DescribeUser / DescribeAccess -> diff -> UpdateUser / UpdateAccess with
  HomeDirectoryType=LOGICAL and the single mapping {"Entry": "/", "Target": home}
  (only when something differs; never in a dry run).

It reads the same configuration (demo/config.env) and returns the same result
shape (Status, Action, ServerId, UserName/ExternalId, Changes, Request, Error), so
the harness can check both answered every event alike. It is run under the AWS
Python runtime interface client: `python -m awslambdaric handler.handler`.
"""

import json
import os
import re

import boto3
import botocore.exceptions

# --- configuration, validated once per cold start (as the Rust function does) ---


def _csv(name):
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


ALLOWED_SERVER_IDS = set(_csv("ALLOWED_SERVER_IDS"))
HOME_ROOTS = [r.rstrip("/") for r in _csv("HOME_ROOTS")]
HOME_TEMPLATE = os.environ.get("HOME_TEMPLATE") or None
ALLOWED_ROLE_ARNS = set(_csv("ALLOWED_ROLE_ARNS")) if os.environ.get("ALLOWED_ROLE_ARNS") else None
DEFAULT_SERVER_ID = os.environ.get("DEFAULT_SERVER_ID") or None
DRY_RUN = os.environ.get("DRY_RUN", "").lower() == "true"
if not ALLOWED_SERVER_IDS:
    raise RuntimeError("ALLOWED_SERVER_IDS is required")
if not HOME_ROOTS:
    raise RuntimeError("HOME_ROOTS is required")

# One client per cold start; endpoint (AWS_ENDPOINT_URL_TRANSFER), region and
# retries (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE) come from the standard settings.
transfer = boto3.client("transfer")

# --- the service model's constraints, plus the same safety rules for paths ---

SERVER_ID = re.compile(r"^s-[0-9a-f]{17}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_@.-]{2,99}$")
EXTERNAL_ID = re.compile(r"^S-1-[0-9-]+$")
PATH_CHARS = re.compile(r"^[A-Za-z0-9/\-_.@+=,~!()'*]+$")
ROLE_ARN = re.compile(r"^arn:aws(-[a-z-]+)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]*[A-Za-z0-9+=,.@_-]{1,64}$")
TRANSFER_VAR = "${transfer:UserName}"
FIELDS = {"Action", "ServerId", "UserName", "ExternalId", "HomeDirectory", "Role", "Policy", "PosixProfile", "DryRun"}
MAX_ID = 4294967295


def _check_path(raw, is_access):
    if not isinstance(raw, str):
        return "must be a string"
    if not raw:
        return "must not be empty"
    if len(raw.encode()) > 1024:
        return "must be at most 1024 bytes"
    if TRANSFER_VAR in raw and not is_access:
        return "'${transfer:UserName}' is only allowed in an access target"
    if not PATH_CHARS.match(raw.replace(TRANSFER_VAR, "x")):
        return "contains characters outside ASCII letters, digits and - _ . @ + = , ~ ! ( ) ' *"
    if not raw.startswith("/") or raw == "/" or raw.endswith("/"):
        return "must be an absolute path below a home root, without a trailing '/'"
    if any(seg in ("", ".", "..") for seg in raw[1:].split("/")):
        return "must not contain empty, '.' or '..' segments"
    return None


def _posix(value, errors):
    if not isinstance(value, dict):
        errors.append({"Field": "PosixProfile", "Message": "must be an object with Uid and Gid"})
        return None
    ok = True
    for key in value:
        if key not in ("Uid", "Gid", "SecondaryGids"):
            errors.append({"Field": f"PosixProfile.{key}", "Message": "unknown field"})
            ok = False
    for key in ("Uid", "Gid"):
        v = value.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_ID:
            errors.append({"Field": f"PosixProfile.{key}", "Message": "must be an integer from 0 to 4294967295"})
            ok = False
    gids = value.get("SecondaryGids") or []
    if not isinstance(gids, list) or len(gids) > 16:
        errors.append({"Field": "PosixProfile.SecondaryGids", "Message": "at most 16 integers"})
        ok = False
    else:
        for i, g in enumerate(gids):
            if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g <= MAX_ID:
                errors.append({"Field": f"PosixProfile.SecondaryGids[{i}]", "Message": "must be an integer"})
                ok = False
    if not ok:
        return None
    profile = {"Uid": value["Uid"], "Gid": value["Gid"]}
    if gids:
        profile["SecondaryGids"] = gids
    return profile


def _failed(identity, code, message, fields=None, retryable=False):
    error = {"Code": code, "Message": message, "Retryable": retryable}
    if fields:
        error["Fields"] = fields
    return {"Status": "Failed", **identity, "Error": error}


def parse(event):
    """Returns (command, None) or (None, failed result). No AWS call."""
    errors = []
    if not isinstance(event, dict):
        return None, _failed({}, "ValidationFailed", "a direct command must be a JSON object")
    identity = {k: event[k] for k in ("ServerId", "UserName", "ExternalId") if isinstance(event.get(k), str)}
    for key in event:
        if key in ("HomeDirectoryType", "HomeDirectoryMappings"):
            errors.append({"Field": key, "Message": "chroot is not negotiable: give HomeDirectory only"})
        elif key not in FIELDS:
            errors.append({"Field": key[:256], "Message": "unknown field"})
    action = event.get("Action")
    if action not in ("UpdateUser", "UpdateAccess"):
        errors.append({"Field": "Action", "Message": "must be UpdateUser or UpdateAccess"})
        action = None
    else:
        identity["Action"] = action
    server = event.get("ServerId", DEFAULT_SERVER_ID)
    if not isinstance(server, str) or not SERVER_ID.match(server):
        errors.append({"Field": "ServerId", "Message": "must be 's-' followed by 17 lower-case hex digits"})
    else:
        identity["ServerId"] = server
    is_access = action == "UpdateAccess"
    subject_key = "ExternalId" if is_access else "UserName"
    other_key = "UserName" if is_access else "ExternalId"
    subject = event.get(subject_key)
    if other_key in event:
        errors.append({"Field": other_key, "Message": f"not accepted for {action}"})
    pattern = EXTERNAL_ID if is_access else USER_NAME
    if not isinstance(subject, str) or not pattern.match(subject) or len(subject) > 256:
        errors.append({"Field": subject_key, "Message": "missing or invalid"})
        subject = None
    home = event.get("HomeDirectory")
    if home is None and not is_access and HOME_TEMPLATE and subject:
        home = HOME_TEMPLATE.replace("${UserName}", subject)
    if home is None:
        errors.append({"Field": "HomeDirectory", "Message": "required"})
    else:
        why = _check_path(home, is_access)
        if why:
            errors.append({"Field": "HomeDirectory", "Message": why})
    role = event.get("Role")
    if role is not None and (not isinstance(role, str) or not 20 <= len(role) <= 2048 or not ROLE_ARN.match(role)):
        errors.append({"Field": "Role", "Message": "must look like arn:aws:iam::111122223333:role/name"})
    policy = event.get("Policy")
    if policy is not None:
        text = policy if isinstance(policy, str) else json.dumps(policy, separators=(",", ":"))
        try:
            doc = json.loads(text)
            if len(text.encode()) > 2048 or not isinstance(doc, dict) or "Statement" not in doc:
                raise ValueError("not a policy document")
            policy = text
        except ValueError:
            errors.append({"Field": "Policy", "Message": "must be a JSON policy document of at most 2048 bytes"})
    posix = _posix(event["PosixProfile"], errors) if "PosixProfile" in event else None
    dry_run = event.get("DryRun", False)
    if not isinstance(dry_run, bool):
        errors.append({"Field": "DryRun", "Message": "must be true or false"})
    if errors:
        names = ", ".join(e["Field"] for e in errors)
        return None, _failed(identity, "ValidationFailed", f"{len(errors)} invalid fields: {names}", errors)

    refused = []
    if server not in ALLOWED_SERVER_IDS:
        refused.append({"Field": "ServerId", "Message": f"{server} is not in ALLOWED_SERVER_IDS"})
    segments = home[1:].split("/")
    if not any(segments[: len(r[1:].split("/"))] == r[1:].split("/") and len(segments) > len(r[1:].split("/"))
               for r in HOME_ROOTS):
        refused.append({"Field": "HomeDirectory", "Message": "not strictly below any allowed home root"})
    if role is not None and (ALLOWED_ROLE_ARNS is None or role not in ALLOWED_ROLE_ARNS):
        refused.append({"Field": "Role", "Message": "not in ALLOWED_ROLE_ARNS"})
    if refused:
        names = ", ".join(e["Field"] for e in refused)
        return None, _failed(identity, "NotAllowed", f"refused by a guardrail: {names}", refused)
    return {"action": action, "server": server, "subject_key": subject_key, "subject": subject,
            "home": home, "role": role, "policy": policy, "posix": posix, "dry_run": dry_run,
            "identity": identity}, None


def _aws_failure(identity, err):
    code = err.response.get("Error", {}).get("Code", "")
    if code == "ResourceNotFoundException":
        return _failed(identity, "NotFound", err.response["Error"].get("Message", code))
    if code == "ThrottlingException":
        return _failed(identity, "Throttled", "Transfer throttled the request", retryable=True)
    if code == "InvalidRequestException":
        return _failed(identity, "ValidationFailed", err.response["Error"].get("Message", code))
    return _failed(identity, "Upstream", f"Transfer answered {code}", retryable=True)


def handler(event, context):
    command, rejection = parse(event)
    if rejection:
        print(json.dumps({"level": "INFO", "source": "direct", **rejection}))
        return rejection
    identity = command["identity"]
    key = {"ServerId": command["server"], command["subject_key"]: command["subject"]}
    try:
        if command["action"] == "UpdateUser":
            live = transfer.describe_user(**key)["User"]
        else:
            live = transfer.describe_access(**key)["Access"]
    except botocore.exceptions.ClientError as err:
        return _aws_failure(identity, err)
    except botocore.exceptions.BotoCoreError as err:
        return _failed(identity, "Upstream", str(err), retryable=True)

    mappings = [{"Entry": "/", "Target": command["home"]}]
    request = {**key, "HomeDirectoryType": "LOGICAL", "HomeDirectoryMappings": mappings, "HomeDirectory": "/"}
    changes = []
    if live.get("HomeDirectoryType") != "LOGICAL":
        changes.append({"Field": "HomeDirectoryType", "Before": live.get("HomeDirectoryType"), "After": "LOGICAL"})
    live_maps = live.get("HomeDirectoryMappings") or []
    if not (len(live_maps) == 1 and live_maps[0].get("Entry") == "/"
            and live_maps[0].get("Target") == command["home"]
            and live_maps[0].get("Type", "DIRECTORY") == "DIRECTORY"):
        changes.append({"Field": "HomeDirectoryMappings", "Before": live_maps or None, "After": mappings})
    if live.get("HomeDirectory") not in (None, "", "/"):
        changes.append({"Field": "HomeDirectory", "Before": live.get("HomeDirectory"), "After": "/"})
    if command["role"] is not None:
        request["Role"] = command["role"]
        if live.get("Role") != command["role"]:
            changes.append({"Field": "Role", "Before": live.get("Role"), "After": command["role"]})
    if command["policy"] is not None:
        request["Policy"] = command["policy"]
        try:
            same = json.loads(live.get("Policy") or "null") == json.loads(command["policy"])
        except ValueError:
            same = False
        if not same:
            changes.append({"Field": "Policy", "Before": live.get("Policy"), "After": command["policy"]})
    if command["posix"] is not None:
        request["PosixProfile"] = command["posix"]
        lp = live.get("PosixProfile")
        norm = lambda p: p and (p.get("Uid"), p.get("Gid"), sorted(p.get("SecondaryGids") or []))
        if norm(lp) != norm(command["posix"]):
            changes.append({"Field": "PosixProfile", "Before": lp, "After": command["posix"]})

    result = {"Status": "Unchanged", **identity, "Changes": changes}
    if changes:
        result["Request"] = request
        if command["dry_run"] or DRY_RUN:
            result["Status"] = "Planned"
        else:
            try:
                if command["action"] == "UpdateUser":
                    transfer.update_user(**request)
                else:
                    transfer.update_access(**request)
                result["Status"] = "Updated"
            except botocore.exceptions.ClientError as err:
                return {**_aws_failure(identity, err), "Changes": changes, "Request": request}
            except botocore.exceptions.BotoCoreError as err:
                return {**_failed(identity, "Upstream", str(err), retryable=True), "Request": request}
    print(json.dumps({"level": "INFO", "source": "direct", "Status": result["Status"], **identity}))
    return result
