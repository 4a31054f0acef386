"""SageMaker's ``Search`` operation for the local SageMaker.

Supported resources: ``TrainingJob`` (standalone jobs and the training jobs of
tuning jobs), ``HyperParameterTuningJob``, ``ModelPackageGroup``,
``ModelPackage`` and ``Endpoint``. Each result is the resource as its
``Describe*`` operation answers it plus its ``Tags``, cut to the member shape
of botocore's ``SearchRecord`` (``{"TrainingJob": {...}}`` and so on).

Property names are dotted paths checked against that shape
(``TrainingJobName``, ``ResourceConfig.InstanceType``,
``InputDataConfig.ChannelName``: any element of a list matches), plus the
documented special forms ``HyperParameters.<name>``, ``Tags.<key>`` and, for
training jobs, ``Metrics.<name>`` (a ``FinalMetricDataList`` value). The
property's type decides how ``Value`` is read, as AWS documents it: numbers
and timestamps (ISO 8601) compare in order, text properties take ``Equals``,
``NotEquals``, ``Contains`` and ``In`` (comma-separated), and a hyperparameter
compares as a decimal when ``Value`` is one (as an integer when ``Value`` is
an integer). ``SubExpressions`` with ``And``/``Or``, ``NestedFilters``,
``SortBy`` (any value property; default ``LastModifiedTime``), ``SortOrder``,
``MaxResults``/``NextToken``, ``VisibilityConditions`` and ``TotalHits`` work
too. Whatever the local service cannot answer is a ``ValidationException``
saying so, never a silently wrong page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.emulator.errors import ServiceError
from local.emulator.paging import cut
from local.emulator.state import ServiceState
from local.emulator.validation import service_model

Record = dict[str, Any]
Predicate = Callable[[Any], bool]

OPERATORS = (
    "Equals",
    "NotEquals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "Contains",
    "Exists",
    "NotExists",
    "In",
)
_ORDERING = ("GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo")
#: At most this many SubExpressions, NestedFilters and Filters in one expression.
MAX_ELEMENTS = 50
#: botocore shape type -> how a Filter reads the property.
_KINDS = {
    "string": "text",
    "integer": "number",
    "long": "number",
    "float": "number",
    "double": "number",
    "timestamp": "timestamp",
    "boolean": "boolean",
}


def _invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


# -- the records ----------------------------------------------------------------------


def _shape_of(resource: str) -> str:
    shape: str = service_model()["shapes"]["SearchRecord"]["members"][resource]["shape"]
    return shape


def _record(resource: str, described: Mapping[str, Any], tags: list[dict[str, str]]) -> Record:
    """``described`` cut to the SearchRecord member's shape, with ``Tags``."""
    members = service_model()["shapes"][_shape_of(resource)]["members"]
    out = {k: v for k, v in described.items() if k in members and v is not None}
    out["Tags"] = [dict(t) for t in tags]
    return out


def _tags(sm: ServiceState, arn: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = sm.call("ListTags", {"ResourceArn": arn})["Tags"]
    return tags


def _training_jobs(sm: ServiceState) -> list[Record]:
    names = list(sm.training_jobs.jobs)
    with sm._lock:
        names += [n for n in sm._training if n not in names]
        tuning = list(sm._tuning.values())
    for record in tuning:  # the training jobs of tuning jobs still running
        job = record.get("job")
        for summary in job.training_jobs() if job is not None else []:
            if summary["TrainingJobName"] not in names:
                names.append(summary["TrainingJobName"])
    out = []
    for name in names:
        try:
            described = sm.call("DescribeTrainingJob", {"TrainingJobName": name})
        except ServiceError:
            continue  # gone meanwhile
        tags = _tags(sm, described["TrainingJobArn"])
        if described.get("TuningJobArn"):
            # A tuning job's tags are on each training job it launches.
            own = {t["Key"] for t in tags}
            tags += [t for t in _tags(sm, described["TuningJobArn"]) if t["Key"] not in own]
        out.append(_record("TrainingJob", described, tags))
    return out


def _tuning_jobs(sm: ServiceState) -> list[Record]:
    with sm._lock:
        names = list(sm._tuning)
    out = []
    for name in names:
        described = sm.call(
            "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": name}
        )
        described.setdefault(
            "LastModifiedTime",
            described.get("HyperParameterTuningEndTime") or described["CreationTime"],
        )
        out.append(
            _record(
                "HyperParameterTuningJob",
                described,
                _tags(sm, described["HyperParameterTuningJobArn"]),
            )
        )
    return out


def _model_package_groups(sm: ServiceState) -> list[Record]:
    return [
        _record("ModelPackageGroup", group, _tags(sm, group["ModelPackageGroupArn"]))
        for group in sm.registry.described_groups()
    ]


def _model_packages(sm: ServiceState) -> list[Record]:
    return [
        _record("ModelPackage", package, _tags(sm, package["ModelPackageArn"]))
        for package in sm.registry.described_packages()
    ]


def _endpoints(sm: ServiceState) -> list[Record]:
    with sm._lock:
        names = list(sm._endpoints)
    out = []
    for name in names:
        try:
            described = sm.call("DescribeEndpoint", {"EndpointName": name})
        except ServiceError:
            continue  # deleted meanwhile
        out.append(_record("Endpoint", described, _tags(sm, described["EndpointArn"])))
    return out


#: Resource -> every record of it in the local account.
RESOURCES: dict[str, Callable[[ServiceState], list[Record]]] = {
    "TrainingJob": _training_jobs,
    "HyperParameterTuningJob": _tuning_jobs,
    "ModelPackageGroup": _model_package_groups,
    "ModelPackage": _model_packages,
    "Endpoint": _endpoints,
}


# -- properties -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Property:
    """A resolved property name: how to read it from a record, and its kind
    (``text``, ``number``, ``timestamp``, ``boolean``, ``mapped`` (a map's
    string value, e.g. a hyperparameter) or ``object``)."""

    name: str
    kind: str
    #: ("member", key) | ("tag", key) | ("metric", name)
    steps: tuple[tuple[str, str], ...]
    #: The shape of its values (list elements for a list).
    shape: str
    listed: bool = False

    def values(self, record: Any) -> list[Any]:
        current = [record]
        for step, key in self.steps:
            found: list[Any] = []
            for value in _flat(current):
                if not isinstance(value, dict):
                    continue
                if step == "member":
                    if value.get(key) is not None:
                        found.append(value[key])
                elif step == "tag":
                    found += [
                        t.get("Value", "") for t in value.get("Tags") or [] if t["Key"] == key
                    ]
                else:  # metric
                    found += [
                        m["Value"]
                        for m in value.get("FinalMetricDataList") or []
                        if m.get("MetricName") == key
                    ]
            current = found
        return _flat(current)


def _flat(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out += _flat(value)
        else:
            out.append(value)
    return out


def _resolve(shape_name: str, name: str, *, top: bool) -> _Property:
    """``name`` as a property of records of ``shape_name`` (``top``: a whole
    SearchRecord member, where ``Tags.<key>`` and ``Metrics.<name>`` apply)."""
    shapes = service_model()["shapes"]
    members = shapes[shape_name].get("members", {})
    head, _, rest = name.partition(".")
    if top and rest and head == "Tags" and "Tags" in members:
        return _Property(name, "text", (("tag", rest),), "TagValue")
    if top and rest and head == "Metrics" and "FinalMetricDataList" in members:
        return _Property(name, "number", (("metric", rest),), "Float")
    parts = name.split(".")
    steps: list[tuple[str, str]] = []
    shape, mapped, listed, i = shape_name, False, False, 0
    while i < len(parts):
        while shapes[shape]["type"] == "list":
            shape, listed = shapes[shape]["member"]["shape"], True
        kind = shapes[shape]["type"]
        if kind == "structure" and parts[i] in shapes[shape]["members"]:
            steps.append(("member", parts[i]))
            shape = shapes[shape]["members"][parts[i]]["shape"]
            i += 1
        elif kind == "map":  # the rest is the key: HyperParameters.<name>
            steps.append(("member", ".".join(parts[i:])))
            shape, mapped, i = shapes[shape]["value"]["shape"], True, len(parts)
        else:
            raise _invalid(f"Unknown property name: {name}")
    while shapes[shape]["type"] == "list":
        shape, listed = shapes[shape]["member"]["shape"], True
    kind = _KINDS.get(shapes[shape]["type"], "object")
    if mapped and kind == "text":
        kind = "mapped"
    return _Property(name, kind, tuple(steps), shape, listed)


# -- values ---------------------------------------------------------------------------


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _stamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return _parse_time(str(value))


def _parse_time(text: str) -> float:
    number = _number(text)
    if number is not None:
        return number
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _ordered(operator: str, left: float, right: float) -> bool:
    if operator == "Equals":
        return left == right
    if operator == "GreaterThan":
        return left > right
    if operator == "GreaterThanOrEqualTo":
        return left >= right
    if operator == "LessThan":
        return left < right
    return left <= right  # LessThanOrEqualTo


def _test(prop: _Property, operator: str, value: str) -> Predicate:
    """Whether one value of ``prop`` satisfies ``operator`` ``value``."""
    kind, name = prop.kind, prop.name
    if kind == "object":
        raise _invalid(
            f"{name} is not a value property: filter on one of its members "
            f"({name}.<member>) or use Exists/NotExists"
        )
    if operator in ("Contains", "In") and kind not in ("text", "mapped"):
        raise _invalid(
            f"The {operator} operator is only supported for text properties; "
            f"{name} is a {kind} property"
        )
    if operator in _ORDERING and kind in ("text", "boolean"):
        raise _invalid(f"The {operator} operator is not supported for {kind} property {name}")
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise _invalid(f"Value {value!r} for boolean property {name} must be true or false")
        wanted = value.lower() == "true"
        return lambda v: bool(v) is wanted
    if kind == "number":
        target = _number(value)
        if target is None:
            raise _invalid(f"Value {value!r} for numeric property {name} must be a number")
        return lambda v: _ordered(operator, float(v), target)
    if kind == "timestamp":
        try:
            moment = _parse_time(value)
        except ValueError:
            raise _invalid(
                f"Value {value!r} for timestamp property {name} must be an ISO 8601 "
                "date-time (YYYY-mm-ddTHH:MM:SS)"
            ) from None
        if operator == "Equals" and moment.is_integer():  # to the second given
            return lambda v: math.floor(_stamp(v)) == moment
        return lambda v: _ordered(operator, _stamp(v), moment)
    return _text_test(prop, operator, value)


def _text_test(prop: _Property, operator: str, value: str) -> Predicate:
    if operator == "Contains":
        return lambda v: value in str(v)
    if operator == "In":
        choices = {choice.strip() for choice in value.split(",")}
        return lambda v: str(v) in choices
    target = _number(value) if prop.kind == "mapped" else None
    if operator == "Equals" and target is None:
        return lambda v: str(v) == value
    if target is None:  # an ordering on a hyperparameter with a non-numeric Value
        raise _invalid(f"Value {value!r} for {operator} on {prop.name} must be a number")
    whole = value.strip().lstrip("+-").isdigit()

    def test(v: Any) -> bool:
        # A decimal hyperparameter compares as an integer when Value is one (AWS's rule).
        number = _number(str(v))
        if number is None:
            return False
        return _ordered(operator, math.trunc(number) if whole else number, target)

    return test


# -- expressions ----------------------------------------------------------------------


def _filter(shape: str, spec: Mapping[str, Any], *, top: bool = True) -> Predicate:
    name = spec["Name"]
    operator = spec.get("Operator") or "Equals"
    if operator not in OPERATORS:
        raise _invalid(f"Unsupported operator {operator!r}; use one of {', '.join(OPERATORS)}")
    prop = _resolve(shape, name, top=top)
    if operator in ("Exists", "NotExists"):
        exists = operator == "Exists"
        return lambda record: bool(prop.values(record)) is exists
    value = spec.get("Value")
    if value is None:
        raise _invalid(f"The {operator} operator on {name} needs a Value")
    if operator == "NotEquals":  # no value equals (an absent property too)
        equals = _test(prop, "Equals", value)
        return lambda record: not any(equals(v) for v in prop.values(record))
    test = _test(prop, operator, value)
    return lambda record: any(test(v) for v in prop.values(record))


def _nested(shape: str, spec: Mapping[str, Any]) -> Predicate:
    """NestedFilters: one element of the list satisfies every filter."""
    parent = spec["NestedPropertyName"]
    prop = _resolve(shape, parent, top=False)
    if not prop.listed or prop.kind != "object":
        raise _invalid(f"NestedPropertyName {parent} must name a list of objects")
    tests = []
    for nested in spec["Filters"]:
        if not nested["Name"].startswith(parent + "."):
            raise _invalid(
                f"Nested filter {nested['Name']} must name a property of {parent} ({parent}.<name>)"
            )
        inner = {**nested, "Name": nested["Name"][len(parent) + 1 :]}
        tests.append(_filter(prop.shape, inner, top=False))
    return lambda record: any(all(t(item) for t in tests) for item in prop.values(record))


def _count(expression: Mapping[str, Any]) -> tuple[int, int]:
    """(SubExpressions + NestedFilters + Filters, Contains operators) in an expression."""
    filters = list(expression.get("Filters") or [])
    elements = len(filters)
    for nested in expression.get("NestedFilters") or []:
        elements += 1 + len(nested.get("Filters") or [])
        filters += nested.get("Filters") or []
    contains = sum(1 for f in filters if f.get("Operator") == "Contains")
    for sub in expression.get("SubExpressions") or []:
        sub_elements, sub_contains = _count(sub)
        elements += 1 + sub_elements
        contains += sub_contains
    return elements, contains


def _expression(shape: str, expression: Mapping[str, Any]) -> Predicate:
    tests = [_filter(shape, f) for f in expression.get("Filters") or []]
    tests += [_nested(shape, n) for n in expression.get("NestedFilters") or []]
    tests += [_expression(shape, s) for s in expression.get("SubExpressions") or []]
    if not tests:
        raise _invalid(
            "A SearchExpression must contain at least one of Filters, NestedFilters "
            "or SubExpressions"
        )
    if (expression.get("Operator") or "And") == "Or":
        return lambda record: any(t(record) for t in tests)
    return lambda record: all(t(record) for t in tests)


def matcher(resource: str, expression: Mapping[str, Any] | None) -> Predicate:
    """A predicate on ``resource`` records for a ``SearchExpression`` (checked
    before any record is looked at)."""
    if expression is None:
        return lambda record: True
    elements, contains = _count(expression)
    if elements > MAX_ELEMENTS:
        raise _invalid(
            f"The SearchExpression has {elements} SubExpressions, NestedFilters and "
            f"Filters; at most {MAX_ELEMENTS} are allowed"
        )
    if contains > 1:
        raise _invalid("'CONTAINS' operator usage limit of 1 exceeded.")
    return _expression(_shape_of(resource), expression)


# -- sorting and the operation --------------------------------------------------------


def _sort(resource: str, records: list[Record], sort_by: str | None, order: str) -> list[Record]:
    shape = _shape_of(resource)
    if sort_by is None:
        members = service_model()["shapes"][shape]["members"]
        sort_by = "LastModifiedTime" if "LastModifiedTime" in members else "CreationTime"
    prop = _resolve(shape, sort_by, top=True)
    if prop.kind == "object":
        raise _invalid(f"SortBy {sort_by} must name a value property, not an object")

    def key(record: Record) -> Any:
        values = prop.values(record)
        if not values:
            return None
        value = values[0]
        if prop.kind == "timestamp":
            return (0, _stamp(value))
        if prop.kind in ("number", "boolean"):
            return (0, float(value))
        number = _number(str(value)) if prop.kind == "mapped" else None
        return (0, number) if number is not None else (1, str(value))

    keyed = [(key(r), r) for r in records]
    present = [(k, r) for k, r in keyed if k is not None]
    present.sort(key=lambda pair: pair[0], reverse=order == "Descending")
    # Records without the property come last, whatever the order.
    return [r for _, r in present] + [r for k, r in keyed if k is None]


def _visibility(conditions: list[Mapping[str, str]]) -> Predicate:
    """VisibilityConditions: a record with one of the tag keys shows only with
    that tag's value; a record without the key shows."""
    wanted: list[tuple[str, str | None]] = []
    for condition in conditions:
        key = condition.get("Key", "")
        if not key.startswith("Tags.") or len(key) == len("Tags."):
            raise _invalid(f"VisibilityConditions key {key!r} must have the form Tags.<key>")
        wanted.append((key[len("Tags.") :], condition.get("Value")))

    def visible(record: Record) -> bool:
        tags = {t["Key"]: t.get("Value", "") for t in record.get("Tags") or []}
        return all(key not in tags or tags[key] == value for key, value in wanted)

    return visible


def search(sm: ServiceState, params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Search`` operation."""
    resource = params["Resource"]
    if resource not in RESOURCES:
        raise _invalid(
            f"Search on {resource} is not supported by the local SageMaker; "
            f"supported resources: {', '.join(RESOURCES)}"
        )
    matches = matcher(resource, params.get("SearchExpression"))
    visible = _visibility(list(params.get("VisibilityConditions") or []))
    # Nothing is shared with this account from another one.
    cross_account = params.get("CrossAccountFilterOption") == "CrossAccount"
    records = [] if cross_account else RESOURCES[resource](sm)
    records = [r for r in records if matches(r) and visible(r)]
    records = _sort(resource, records, params.get("SortBy"), params.get("SortOrder", "Descending"))
    chunk, token = cut(records, params)
    out: dict[str, Any] = {
        "Results": [{resource: record} for record in chunk],
        "TotalHits": {"Value": len(records), "Relation": "EqualTo"},
    }
    if token:
        out["NextToken"] = token
    return out
