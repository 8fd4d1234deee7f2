"""API authorisation rules for transfer-chroot's templates (cfn-lint custom rules).

Every way the template can expose the function over HTTP must demand SigV4: SAM
``Api``/``HttpApi`` events, raw API Gateway methods and routes, function URLs.
cfn-lint (since 1.54) hands the rules the SAM source, not the translator's output,
so SAM events and the APIs they attach to (including the implicit API SAM would
create, which takes its Auth from ``Globals``) are read here directly.
"""

from __future__ import annotations

from typing import Any, Iterator

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SOURCE = "template-rules/README.md"


def _intrinsic(value: Any, key: str) -> Any:
    if isinstance(value, dict) and len(value) == 1 and key in value:
        return value[key]
    return None


def _ref_name(value: Any) -> str | None:
    name = _intrinsic(value, "Ref")
    return name if isinstance(name, str) else None


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _resources(cfn: Any, *types: str) -> Iterator[tuple[str, dict]]:
    section = cfn.template.get("Resources")
    if not isinstance(section, dict):
        return
    for name, resource in section.items():
        if isinstance(resource, dict) and resource.get("Type") in types:
            props = resource.get("Properties")
            yield name, props if isinstance(props, dict) else {}


def _globals(cfn: Any) -> dict:
    found = cfn.template.get("Globals")
    if not isinstance(found, dict):
        found = getattr(cfn, "transform_pre", {}).get("Globals")
    return found if isinstance(found, dict) else {}


class ApiRoutesIamAuthorized(CloudFormationLintRule):
    """Every API route the template serves requires SigV4 (AWS_IAM).

    The function changes who may reach which directory: an unauthenticated or
    Cognito/Lambda-authorised route would let anyone who gets past that
    authoriser rewrite chroots. A SAM ``Api`` event is IAM-authorised by its own
    ``Auth.Authorizer`` or its API's ``DefaultAuthorizer`` (``Globals`` for the
    implicit API); an ``HttpApi`` default also needs ``EnableIamAuthorizer``.
    Raw ``AWS::ApiGateway::Method`` and ``AWS::ApiGatewayV2::Route`` resources
    need ``AuthorizationType: AWS_IAM``.
    """

    id = "E9107"
    shortdesc = "Every API method and route is IAM-authorised"
    description = "SAM Api/HttpApi events, ApiGateway methods and ApiGatewayV2 routes use AWS_IAM authorisation"
    source_url = SOURCE
    tags = ["api", "authorisation"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        globals_ = _globals(cfn)
        section = cfn.template.get("Resources") or {}
        for fname, props in _resources(cfn, "AWS::Serverless::Function"):
            events = props.get("Events")
            if not isinstance(events, dict):
                continue
            for ename, event in events.items():
                etype = _get(event, "Type")
                if etype not in ("Api", "HttpApi"):
                    continue
                path = ["Resources", fname, "Properties", "Events", ename]
                eprops = _get(event, "Properties")
                method = str(_get(eprops, "Method") or "ANY").upper()
                route = str(_get(eprops, "Path") or "$default")
                own = _get(eprops, "Auth", "Authorizer")
                api_key = "RestApiId" if etype == "Api" else "ApiId"
                api_value = _get(eprops, api_key)
                api_name = _ref_name(api_value)
                api = section.get(api_name) if api_name else None
                expected_type = (
                    "AWS::Serverless::Api" if etype == "Api" else "AWS::Serverless::HttpApi"
                )
                if api_value is not None and not (
                    isinstance(api, dict) and api.get("Type") == expected_type
                ):
                    found.append(
                        RuleMatch(
                            path + ["Properties", api_key],
                            f"{fname}.Events.{ename}: {api_key} does not name an {expected_type} of this template",
                        )
                    )
                    default = None
                elif api is not None:
                    default = _get(api, "Properties", "Auth", "DefaultAuthorizer")
                else:
                    # The implicit API SAM creates takes its Auth from Globals.
                    default = _get(globals_, etype, "Auth", "DefaultAuthorizer")
                authorizer = own if own is not None else default
                ok = authorizer == "AWS_IAM"
                if etype == "HttpApi" and own is None:
                    # An HTTP API accepts AWS_IAM as its default only with EnableIamAuthorizer.
                    ok = ok and _get(api, "Properties", "Auth", "EnableIamAuthorizer") in (
                        True,
                        "true",
                    )
                if not ok:
                    found.append(
                        RuleMatch(
                            path,
                            f"{fname}.Events.{ename}: {method} {route} is not IAM-authorised (authorizer {authorizer!r})",
                        )
                    )
        for name, props in _resources(cfn, "AWS::ApiGateway::Method", "AWS::ApiGatewayV2::Route"):
            if props.get("AuthorizationType") != "AWS_IAM":
                found.append(
                    RuleMatch(
                        ["Resources", name, "Properties"]
                        + (["AuthorizationType"] if "AuthorizationType" in props else []),
                        f"{name}: AuthorizationType is {props.get('AuthorizationType')!r}, not AWS_IAM",
                    )
                )
        return found


class ApiDefinitionsVisible(CloudFormationLintRule):
    """No API whose routes are declared in an OpenAPI definition.

    ``DefinitionBody``/``DefinitionUri`` (SAM) and ``Body``/``BodyS3Location`` (raw
    API Gateway) declare routes and their authorisation in OpenAPI, which E9107
    cannot verify; a route there could be open. Declare routes as events or
    resources instead.
    """

    id = "E9108"
    shortdesc = "No API routes hidden in an OpenAPI definition"
    description = (
        "Serverless Api/HttpApi without DefinitionBody/DefinitionUri;"
        " RestApi/ApiGatewayV2 Api without Body/BodyS3Location"
    )
    source_url = SOURCE
    tags = ["api", "authorisation"]

    KEYS = {
        "AWS::Serverless::Api": ("DefinitionBody", "DefinitionUri"),
        "AWS::Serverless::HttpApi": ("DefinitionBody", "DefinitionUri"),
        "AWS::ApiGateway::RestApi": ("Body", "BodyS3Location"),
        "AWS::ApiGatewayV2::Api": ("Body", "BodyS3Location"),
    }

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for name, props in _resources(cfn, *self.KEYS):
            rtype = cfn.template["Resources"][name]["Type"]
            for key in self.KEYS[rtype]:
                if key in props:
                    found.append(
                        RuleMatch(
                            ["Resources", name, "Properties", key],
                            f"{name}: {key} declares routes these rules cannot verify; declare them as events",
                        )
                    )
        return found


class FunctionUrlsIamAuthorized(CloudFormationLintRule):
    """No function URL without IAM authorisation.

    A function URL with ``AuthType: NONE`` is a public HTTPS endpoint that
    invokes the function with whatever body anyone sends, bypassing API Gateway
    and its SigV4 check.
    """

    id = "E9109"
    shortdesc = "Function URLs use AuthType AWS_IAM"
    description = "FunctionUrlConfig and AWS::Lambda::Url set AuthType AWS_IAM"
    source_url = SOURCE
    tags = ["lambda", "authorisation"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for name, props in _resources(cfn, "AWS::Serverless::Function"):
            url = props.get("FunctionUrlConfig")
            if url is not None and _get(url, "AuthType") != "AWS_IAM":
                found.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "FunctionUrlConfig"],
                        f"{name}: function URL without AuthType AWS_IAM",
                    )
                )
        for name, props in _resources(cfn, "AWS::Lambda::Url"):
            if props.get("AuthType") != "AWS_IAM":
                found.append(
                    RuleMatch(
                        ["Resources", name, "Properties"]
                        + (["AuthType"] if "AuthType" in props else []),
                        f"{name}: function URL without AuthType AWS_IAM",
                    )
                )
        return found
