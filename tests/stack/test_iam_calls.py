"""Each Lambda role grants exactly the AWS calls its handler makes.

Two checks per handler: the granted SageMaker/S3/IAM actions equal an explicit
expected set (reviewed by hand), and they match the boto3 operations found in
the code the handler reaches (its module, then every ``pipeline_core`` function
or class it references, transitively). A new call without a grant, or a grant
nobody calls, fails here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import boto3
import pytest
from botocore import xform_name

from stacks.pipeline_stack import ASYNC_FUNCTIONS, FUNCTION_SPECS
from tests.stack.conftest import Synth
from tests.stack.helpers import ROOT
from tests.stack.test_iam import actions_of, role_statements

#: Action prefixes this file is about (logs/X-Ray come with every function, KMS: test_kms.py).
SERVICES = (
    "sagemaker:",
    "s3:",
    "iam:",
    "sns:",
    "scheduler:",
    "states:",
    "dynamodb:",
    "cloudwatch:",
)

EXPECTED: dict[str, set[str]] = {
    # the run's endpoint: a run of the other kind fails before any cost
    "ValidateInput": {"sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"},
    "Convert": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"},
    "ConvertShard": {"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
    "FinalizeDataset": {"s3:GetObject", "s3:PutObject", "s3:ListBucket"},
    "StartTuning": {
        "sagemaker:CreateHyperParameterTuningJob",
        # a retry adopts the existing job, only if its tags are this run's
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:ListTags",
        "sagemaker:AddTags",
        "iam:PassRole",
    },
    "DescribeTuning": {
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",  # billable seconds
    },
    "Deploy": {
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeModel",  # adopt only this run's model and config
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:ListTags",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:DeleteEndpoint",
        "sagemaker:AddTags",
        "iam:PassRole",
        "dynamodb:PutItem",  # the endpoint's lease
        "dynamodb:DeleteItem",
    },
    "DescribeEndpoint": {
        "sagemaker:DescribeEndpoint",
        "dynamodb:DeleteItem",  # a failed deployment frees the lease
        # the superseded config (no listing), its tags; its / a rolled-back run's deletes
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:ListTags",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
    },
    "Evaluate": {
        "sagemaker:InvokeEndpoint",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",  # the report's tuning trials
        "sagemaker:UpdateModelPackage",  # test AUC and F1 on the registered version
        "s3:GetObject",
        "s3:PutObject",
        "dynamodb:DeleteItem",  # done with the endpoint: release the lease
        "cloudwatch:PutMetricData",  # the dashboard's run metrics
    },
    # No Tags with a group (a version uses the group's): no AddTags.
    "RegisterModel": {"sagemaker:CreateModelPackage"},
    "LoadModelPackage": {
        "sagemaker:DescribeModelPackage",
        # the version's test data must still exist (a missing object: 404, not 403)
        "s3:GetObject",
        "s3:ListBucket",
    },
    "WaitForApproval": {
        "s3:PutObject",  # the task token, under runs/<execution>/
        "sagemaker:DescribeModelPackage",  # decided before the token was stored?
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    },
    "ApprovalDecided": {
        "s3:GetObject",
        "sagemaker:DescribeModelPackage",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "sns:Publish",  # its on-failure destination (Lambda publishes as the role)
    },
    "Cleanup": {
        "sagemaker:ListEndpoints",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
        "sagemaker:ListHyperParameterTuningJobs",
        "sagemaker:ListTransformJobs",
        "sagemaker:ListTags",
        "sagemaker:DeleteEndpoint",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:StopTransformJob",
        "states:ListExecutions",
        "states:StopExecution",
        "scheduler:ListSchedules",
        "scheduler:DeleteSchedule",
        "sagemaker:ListModelPackages",  # the registry's versions go with the group
        "sagemaker:DeleteModelPackage",
    },
    "CleanupComplete": {
        "sagemaker:ListEndpoints",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListModels",
        "sagemaker:ListHyperParameterTuningJobs",
        "sagemaker:ListTags",
        "sagemaker:DeleteEndpoint",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
        "sagemaker:StopHyperParameterTuningJob",
    },
    "ScheduleEndpointTtl": {
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",  # moves the schedule of a later run
        "scheduler:DeleteSchedule",  # ttl_hours 0
        "iam:PassRole",  # the scheduler role, to scheduler.amazonaws.com only
    },
    "StartTransform": {
        "sagemaker:CreateModel",
        "sagemaker:CreateTransformJob",
        "sagemaker:AddTags",
        "iam:PassRole",
        # a retry adopts its model / job only if their tags are this run's
        "sagemaker:DescribeModel",
        "sagemaker:DescribeTransformJob",
        "sagemaker:ListTags",
    },
    "DescribeTransform": {"sagemaker:DescribeTransformJob", "sagemaker:DeleteModel"},
    "EndpointTtl": {
        "sagemaker:DescribeEndpoint",
        "sagemaker:ListTags",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DeleteEndpoint",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
        "sns:Publish",
        # A busy endpoint: the TTL re-arms itself (a new schedule invoking itself),
        # after looking for a newer TTL schedule of the endpoint.
        "scheduler:CreateSchedule",
        "scheduler:GetSchedule",
        "iam:PassRole",  # the scheduler role, to scheduler.amazonaws.com only
    },
    "ExecutionEnded": {
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:StopTransformJob",
        "dynamodb:Scan",  # the endpoint leases the run still holds
        "dynamodb:DeleteItem",
        "sns:Publish",
        # A run that deployed but never scheduled its TTL: the endpoint's
        # config and tags, then its TTL schedule.
        "sagemaker:DescribeEndpoint",
        "sagemaker:ListTags",
        "scheduler:CreateSchedule",
        "iam:PassRole",  # the scheduler role, to scheduler.amazonaws.com only
    },
}

#: Granted for a call that never names them: ``Tags`` in a Create request needs
#: AddTags, a ``RoleArn`` needs PassRole, ListBucket turns a missing key's 403 into 404.
IMPLIED = {"sagemaker:AddTags", "iam:PassRole", "s3:ListBucket"}

#: Granted for the function's on-failure destination (the stack's topic), which
#: Lambda publishes to as the function's role: the handler itself need not call it.
DESTINATION_GRANTS = {name: {"sns:Publish"} for name in ASYNC_FUNCTIONS}

#: API operations whose IAM action has another name.
#: HeadObject is authorized by s3:GetObject (IAM has no s3:HeadObject action).
IAM_ACTION_OF = {"s3:ListObjectsV2": "s3:ListBucket", "s3:HeadObject": "s3:GetObject"}

#: boto3 service → IAM action prefix.
ACTION_PREFIX = {
    "s3": "s3",
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "sns": "sns",
    "scheduler": "scheduler",
    "stepfunctions": "states",
    "cloudwatch": "cloudwatch",
    "dynamodb": "dynamodb",
}


def _granted(s: Synth, name: str) -> set[str]:
    sts = role_statements(s, s.stack.functions[name].role)
    return {a for a in actions_of(sts) if a.startswith(SERVICES)}


# -- what the code calls ------------------------------------------------------------------


@dataclass
class _Module:
    tree: ast.Module
    #: top-level function, class or variable name → node
    defs: dict[str, ast.AST] = field(default_factory=dict)
    #: local name → (module, name) for ``from pipeline_core.x import name``
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)


@cache
def _module(dotted: str) -> _Module:
    tree = ast.parse((ROOT / Path(*dotted.split("."))).with_suffix(".py").read_text())
    mod = _Module(tree)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            mod.defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):  # tables such as cleanup's _KINDS
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    mod.defs[target.id] = node
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ("pipeline_core", "lambdas")
        ):
            for alias in node.names:
                mod.imports[alias.asname or alias.name] = (str(node.module), alias.name)
    return mod


def _docstrings(node: ast.AST) -> set[int]:
    return {
        id(n.body[0].value)
        for n in ast.walk(node)
        if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }


def reached_identifiers(handler_module: str) -> tuple[set[str], set[str]]:
    """(attribute names and string constants, boto3 services of ``client(...)`` calls)
    in the handler and everything it references in our packages."""
    identifiers: set[str] = set()
    services: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [(handler_module, "handler"), (handler_module, "_clients")]
    while todo:
        dotted, name = todo.pop()
        mod = _module(dotted)
        if (dotted, name) in seen:
            continue
        seen.add((dotted, name))
        if name in mod.imports:
            todo.append(mod.imports[name])
            continue
        node = mod.defs.get(name)
        if node is None:
            continue
        skip = _docstrings(node)
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute):
                identifiers.add(n.attr)
            elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip:
                identifiers.add(n.value)
            elif isinstance(n, ast.Name):
                todo.append((dotted, n.id))
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "client" and n.args:
                first = n.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    services.add(first.value)
    return identifiers, services


@cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name → IAM action, for one boto3 service."""
    model = boto3.client(service, region_name="us-east-1").meta.service_model
    actions = {xform_name(op): f"{ACTION_PREFIX[service]}:{op}" for op in model.operation_names}
    return {method: IAM_ACTION_OF.get(action, action) for method, action in actions.items()}


#: Same method name in two services a handler uses: SNS's DeleteEndpoint
#: (mobile push endpoints) is SageMaker's delete_endpoint, never called on SNS.
NAME_COLLISIONS = {"sns:DeleteEndpoint"}


def called_actions(handler_module: str) -> set[str]:
    identifiers, services = reached_identifiers(handler_module)
    return {
        action
        for service in services
        for method, action in _operations(service).items()
        if method in identifiers
    } - NAME_COLLISIONS


def _module_of(name: str) -> str:
    return f"lambdas.{FUNCTION_SPECS[name].module}"


# -- the tests ----------------------------------------------------------------------------


def test_every_function_has_an_expected_set() -> None:
    assert set(EXPECTED) == set(FUNCTION_SPECS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_role_grants_exactly_the_expected_actions(synthesized: Synth, name: str) -> None:
    assert _granted(synthesized, name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_call_the_handler_makes_is_granted_and_nothing_else(
    synthesized: Synth, name: str
) -> None:
    called = called_actions(_module_of(name))
    granted = _granted(synthesized, name)
    assert called - granted == set(), "called but not granted"
    implied = IMPLIED | DESTINATION_GRANTS.get(name, set())
    assert granted - implied - called == set(), "granted but never called"


def test_the_call_finder_sees_calls_through_pipeline_core() -> None:
    # Deploy's calls live in pipeline_core.deploy; cleanup's in a table of names.
    assert {"sagemaker:CreateModel", "sagemaker:UpdateEndpoint"} <= called_actions("lambdas.deploy")
    assert "sagemaker:StopHyperParameterTuningJob" in called_actions("lambdas.cleanup")
    # ValidateInput reaches pipeline_core.deploy's look at the endpoint, not its creates.
    assert called_actions("lambdas.validate_input") == {
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
    }
    # DescribeEndpoint reaches pipeline_core.deploy but not its create/update path.
    assert "sagemaker:CreateModel" not in called_actions("lambdas.describe_endpoint")
