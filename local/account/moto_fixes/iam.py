"""moto 5.2.5's iam service, corrected where AWS answers differently.

``SimulatePrincipalPolicy``: moto 5.2.5 has no handler for it
(``IamResponse`` has no ``simulate_principal_policy``), so its server answers
an HTML 500 that botocore cannot parse. The SageMaker Python SDK v3 calls it
to validate every execution role it is given. This module adds the operation
to ``IamResponse``, answering in AWS's shape (botocore's
``SimulatePolicyResponse``, serialized by moto's own serializer).

What it evaluates, an honest subset of the IAM policy simulator:

- the principal's identity policies: a role's or user's inline and attached
  managed policies, and for a user those of its groups (a group ARN is
  accepted too), plus ``PolicyInputList``;
- ``Allow``/``Deny`` with ``Action``/``NotAction`` and
  ``Resource``/``NotResource``, ``*`` and ``?`` wildcards (actions case
  insensitive); an explicit deny wins, nothing matching is ``implicitDeny``;
- ``Condition`` with the ``String*``, ``Arn*``, ``Numeric*``, ``Date*``,
  ``Bool``, ``IpAddress``/``NotIpAddress`` and ``Null`` operators, the
  ``...IfExists`` suffix and the ``ForAnyValue:``/``ForAllValues:``
  qualifiers, against ``ContextEntries``; as on AWS, a condition key with no
  context entry makes its statement not apply and is listed in
  ``MissingContextValues``; any other operator makes its statement not apply;
- a permissions boundary (the principal's, or
  ``PermissionsBoundaryPolicyInputList``): an action it does not allow is
  ``implicitDeny`` with ``PermissionsBoundaryDecisionDetail``;
- ``MaxItems``/``Marker`` paging over ``EvaluationResults`` (one per action;
  with ``ResourceArns``, ``ResourceSpecificResults`` holds one per resource and
  the action's decision is the most restrictive of them).

Not evaluated: ``PolicyExclusionList``, ``ResourcePolicy``, ``CallerArn``,
``ResourceOwner``, ``ResourceHandlingOption``, policy variables
(``${aws:username}``) and Organizations SCPs. ``EvalResourceName`` is ``*``
(AWS puts the action's ARN template there; moto has no catalogue of them).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.exceptions import InvalidInput, NotFoundException
from moto.iam.responses import IamResponse

_ENTITY_ARN = re.compile(
    r"arn:[\w-]+:iam::\d{12}:(role|user|group)/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)"
)
_DEFAULT_MAX_ITEMS = 100
_DECISION_RANK = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}


@dataclass(frozen=True)
class _Statement:
    policy_id: str
    policy_type: str
    body: dict[str, Any]
    start: tuple[int, int]
    end: tuple[int, int]

    @property
    def effect(self) -> str:
        return str(self.body.get("Effect", ""))

    def describe(self) -> dict[str, Any]:
        """AWS's ``Statement`` shape (positions are 1-based line and column)."""
        return {
            "SourcePolicyId": self.policy_id,
            "SourcePolicyType": self.policy_type,
            "StartPosition": {"Line": self.start[0], "Column": self.start[1]},
            "EndPosition": {"Line": self.end[0], "Column": self.end[1]},
        }


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _statements(document: str, policy_id: str, policy_type: str) -> list[_Statement]:
    """The statements of one policy document, with where each sits in its text."""
    decoder = json.JSONDecoder()
    try:
        parsed = json.loads(document)
    except ValueError as e:
        raise InvalidInput(f"Policy {policy_id} is not valid JSON: {e}") from e
    raw = parsed.get("Statement", []) if isinstance(parsed, dict) else []
    items = raw if isinstance(raw, list) else [raw]
    # Locate each statement's text: scan from the "Statement" key for each object in turn.
    cursor = max(document.find('"Statement"'), 0)
    found: list[_Statement] = []
    for item in items:
        start = document.find("{", cursor)
        end = start
        if start >= 0:
            try:
                _, end = decoder.raw_decode(document, start)
            except ValueError:
                end = start
        cursor = max(end, cursor)
        found.append(
            _Statement(
                policy_id,
                policy_type,
                item if isinstance(item, dict) else {},
                _position(document, max(start, 0)),
                _position(document, max(end, 0)),
            )
        )
    return found


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in str(pattern))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _targets(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Does the statement's Action/NotAction and Resource/NotResource cover the request?"""
    if "Action" in statement:
        acts = any(_glob(p, action, ignore_case=True) for p in _as_list(statement["Action"]))
    elif "NotAction" in statement:
        acts = not any(_glob(p, action, ignore_case=True) for p in _as_list(statement["NotAction"]))
    else:
        return False
    if "Resource" in statement:
        on = any(_glob(p, resource) for p in _as_list(statement["Resource"]))
    elif "NotResource" in statement:
        on = not any(_glob(p, resource) for p in _as_list(statement["NotResource"]))
    else:
        return False
    return acts and on


def _number(value: str) -> float:
    return float(value)


def _date(value: str) -> float:
    text = str(value)
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)  # epoch seconds
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _compare(convert: Callable[[str], float], test: Callable[[float, float], bool]) -> Any:
    def check(value: str, expected: str) -> bool:
        try:
            return test(convert(value), convert(expected))
        except ValueError:
            return False

    return check


def _ip(value: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, e: v == e,
    "StringEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringLike": lambda v, e: _glob(e, v),
    "ArnEquals": lambda v, e: v == e,
    "ArnLike": lambda v, e: _glob(e, v),
    "Bool": lambda v, e: v.lower() == str(e).lower(),
    "NumericEquals": _compare(_number, lambda a, b: a == b),
    "NumericLessThan": _compare(_number, lambda a, b: a < b),
    "NumericLessThanEquals": _compare(_number, lambda a, b: a <= b),
    "NumericGreaterThan": _compare(_number, lambda a, b: a > b),
    "NumericGreaterThanEquals": _compare(_number, lambda a, b: a >= b),
    "DateEquals": _compare(_date, lambda a, b: a == b),
    "DateLessThan": _compare(_date, lambda a, b: a < b),
    "DateLessThanEquals": _compare(_date, lambda a, b: a <= b),
    "DateGreaterThan": _compare(_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _compare(_date, lambda a, b: a >= b),
    "IpAddress": _ip,
}
#: A negated operator holds when no expected value matches.
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
}


def _condition_holds(
    condition: dict[str, Any], context: dict[str, list[str]]
) -> tuple[bool, set[str]]:
    """(whether every condition holds, the context keys it needed and lacked)."""
    missing: set[str] = set()
    holds = True
    for raw_operator, block in condition.items():
        qualifier, _, operator = str(raw_operator).rpartition(":")
        if_exists = operator.endswith("IfExists") and operator != "IfExists"
        operator = operator.removesuffix("IfExists")
        for key, expected in (block or {}).items():
            values = context.get(str(key).lower())
            wanted = [str(e) for e in _as_list(expected)]
            if operator == "Null":
                holds &= (values is None) == (wanted[0].lower() == "true")
                continue
            if values is None:
                if not if_exists:
                    missing.add(str(key))
                    holds = False
                continue
            negated = operator in _NEGATED
            test = _POSITIVE.get(_NEGATED.get(operator, operator))
            if test is None:
                holds = False  # an operator this subset does not evaluate
                continue
            hits = [any(test(v, e) for e in wanted) != negated for v in values]
            # single-valued keys and ForAnyValue: any value; ForAllValues: every value
            holds &= all(hits) if qualifier == "ForAllValues" else any(hits)
    return holds, missing


@dataclass
class _Decision:
    decision: str
    matched: list[_Statement]
    missing: set[str]


def _decide(
    statements: Iterable[_Statement], action: str, resource: str, context: dict[str, list[str]]
) -> _Decision:
    allows: list[_Statement] = []
    denies: list[_Statement] = []
    missing: set[str] = set()
    for statement in statements:
        if not _targets(statement.body, action, resource):
            continue
        holds, lacked = _condition_holds(statement.body.get("Condition") or {}, context)
        missing |= lacked
        if not holds:
            continue
        if statement.effect == "Deny":
            denies.append(statement)
        elif statement.effect == "Allow":
            allows.append(statement)
    if denies:
        return _Decision("explicitDeny", denies, missing)
    if allows:
        return _Decision("allowed", allows, missing)
    return _Decision("implicitDeny", [], missing)


def _managed(policy: Any) -> tuple[str, str, str]:
    """(name, policy type, default version's document) of a moto ManagedPolicy."""
    document = next((v.document for v in policy.versions if v.is_default), "{}")
    kind = "aws-managed" if ":iam::aws:policy/" in policy.arn else "user-managed"
    return policy.name, kind, document


def _principal_policies(backend: Any, arn: str) -> tuple[list[_Statement], list[_Statement]]:
    """(identity statements, permissions-boundary statements) of a role, user or group."""
    match = _ENTITY_ARN.fullmatch(arn)
    if not match:
        raise InvalidInput(f"Invalid Entity Arn: {arn}")
    kind, name = match.groups()
    entities: list[tuple[str, Any]]
    if kind == "role":
        role = next((r for r in backend.get_roles() if r.name == name), None)
        if role is None:
            raise NotFoundException(f"The role with name {name} cannot be found.")
        entities = [("role", role)]
    elif kind == "user":
        user = backend.users.get(name)
        if user is None:
            raise NotFoundException(f"The user with name {name} cannot be found.")
        entities = [("user", user)] + [("group", g) for g in backend.get_groups_for_user(name)]
    else:
        group = backend.groups.get(name)
        if group is None:
            raise NotFoundException(f"The group with name {name} cannot be found.")
        entities = [("group", group)]
    identity: list[_Statement] = []
    for entity_kind, entity in entities:
        for policy_name, document in entity.policies.items():
            identity += _statements(document, policy_name, entity_kind)
        for policy in entity.managed_policies.values():
            policy_name, policy_kind, document = _managed(policy)
            identity += _statements(document, policy_name, policy_kind)
    boundary: list[_Statement] = []
    boundary_arn = getattr(entities[0][1], "permissions_boundary_arn", None)
    if boundary_arn and boundary_arn in backend.managed_policies:
        policy_name, policy_kind, document = _managed(backend.managed_policies[boundary_arn])
        boundary = _statements(document, policy_name, policy_kind)
    return identity, boundary


def _evaluate(
    identity: list[_Statement],
    boundary: list[_Statement] | None,
    action: str,
    resource: str,
    context: dict[str, list[str]],
) -> tuple[_Decision, bool | None]:
    """The decision, and whether the boundary allows the action (None: no boundary)."""
    decided = _decide(identity, action, resource, context)
    if boundary is None:
        return decided, None
    bounded = _decide(boundary, action, resource, context)
    missing = decided.missing | bounded.missing
    if bounded.decision == "explicitDeny" and decided.decision != "explicitDeny":
        return _Decision("explicitDeny", bounded.matched, missing), False
    if bounded.decision != "allowed" and decided.decision == "allowed":
        return _Decision("implicitDeny", [], missing), False
    return _Decision(decided.decision, decided.matched, missing), bounded.decision == "allowed"


def _unique(statements: Iterable[_Statement]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for statement in statements:
        described = statement.describe()
        if described not in seen:
            seen.append(described)
    return seen


def simulate_principal_policy(response: IamResponse) -> ActionResult:
    """``iam:SimulatePrincipalPolicy`` (see the module docstring for what it evaluates)."""
    params = response._get_params()
    identity, boundary = _principal_policies(response.backend, params["PolicySourceArn"])
    for i, document in enumerate(params.get("PolicyInputList") or [], start=1):
        identity += _statements(document, f"PolicyInputList.{i}", "none")
    boundary_inputs = params.get("PermissionsBoundaryPolicyInputList") or []
    for i, document in enumerate(boundary_inputs, start=1):
        boundary += _statements(document, f"PermissionsBoundaryPolicyInputList.{i}", "none")
    has_boundary = bool(boundary) or bool(boundary_inputs)
    context = {
        str(entry.get("ContextKeyName", "")).lower(): [
            str(v) for v in entry.get("ContextKeyValues") or []
        ]
        for entry in params.get("ContextEntries") or []
    }
    actions: list[str] = list(params.get("ActionNames") or [])
    resource_arns: list[str] = list(params.get("ResourceArns") or [])
    max_items = int(params.get("MaxItems") or _DEFAULT_MAX_ITEMS)
    marker = params.get("Marker")
    if marker is not None and not str(marker).isdigit():
        raise InvalidInput(f"Invalid Marker: {marker}")
    first = int(marker or 0)
    page = actions[first : first + max_items]
    results = []
    for action in page:
        per_resource = [
            (
                resource,
                *_evaluate(identity, boundary if has_boundary else None, action, resource, context),
            )
            for resource in (resource_arns or ["*"])
        ]
        worst = max(per_resource, key=lambda r: _DECISION_RANK[r[1].decision])
        result: dict[str, Any] = {
            "EvalActionName": action,
            "EvalResourceName": "*",
            "EvalDecision": worst[1].decision,
            "MatchedStatements": _unique(s for _, d, _ in per_resource for s in d.matched),
            "MissingContextValues": sorted(set().union(*(d.missing for _, d, _ in per_resource))),
        }
        if has_boundary:
            result["PermissionsBoundaryDecisionDetail"] = {
                "AllowedByPermissionsBoundary": all(b is not False for _, _, b in per_resource)
            }
        if resource_arns:
            result["ResourceSpecificResults"] = [
                {
                    "EvalResourceName": resource,
                    "EvalResourceDecision": decided.decision,
                    "MatchedStatements": _unique(decided.matched),
                    "MissingContextValues": sorted(decided.missing),
                }
                for resource, decided, _ in per_resource
            ]
        results.append(result)
    answer: dict[str, Any] = {"EvaluationResults": results}
    truncated = first + max_items < len(actions)
    answer["IsTruncated"] = truncated
    if truncated:
        answer["Marker"] = str(first + max_items)
    return ActionResult(answer)


def install() -> None:
    """Apply this module's fixes (idempotent)."""
    if getattr(IamResponse, "simulate_principal_policy", None) is not _handler:
        IamResponse.simulate_principal_policy = _handler  # type: ignore[attr-defined]


def _handler(self: IamResponse) -> ActionResult:
    return simulate_principal_policy(self)
