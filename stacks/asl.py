"""Plain ASL (and Lambda specs) out of the synthesized CloudFormation template.

The local run executes exactly the state machine CDK synthesized. CDK writes
its definition as an ``Fn::Join`` with ``Ref``/``Fn::GetAtt`` parts; this
module resolves those intrinsics to the values CloudFormation would produce
for a given region and account (or to stable placeholders), e.g.
``Fn::GetAtt [ConvertFunction1CDD2A32, Arn]`` →
``arn:aws:lambda:us-east-1:123456789012:function:ConvertFunction1CDD2A32``.

:func:`lambda_functions` gives each function's handler string and resolved
environment under the very ARN the definition uses, so a runner can dispatch
``Resource`` ARNs to ``lambdas.<module>.handler`` with that function's env.

CLI (used by ``make synth`` and asl-validator)::

    python -m stacks.asl cdk.out/Pipeline.template.json > asl.json
    python -m stacks.asl cdk.out/Pipeline.template.json --functions
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

DEFAULT_REGION = "us-east-1"
#: moto's default account id.
DEFAULT_ACCOUNT = "123456789012"
STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
FUNCTION_TYPE = "AWS::Lambda::Function"
TABLE_TYPE = "AWS::DynamoDB::Table"

_URL_SUFFIXES = {
    "aws-cn": "amazonaws.com.cn",
    "aws-iso": "c2s.ic.gov",
    "aws-iso-b": "sc2s.sgov.gov",
}
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class LambdaFunctionInfo(TypedDict):
    """One ``AWS::Lambda::Function`` of the template, resolved."""

    logical_id: str
    function_name: str
    arn: str
    handler: str
    runtime: str
    environment: dict[str, str]
    timeout: int
    memory_size: int


class UnresolvableError(ValueError):
    """An intrinsic the resolver does not know how to evaluate."""


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


@dataclass(frozen=True)
class Resolver:
    """Evaluates CloudFormation intrinsics against one template."""

    template: Mapping[str, Any]
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    stack_name: str = "Pipeline"

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def url_suffix(self) -> str:
        return _URL_SUFFIXES.get(self.partition, "amazonaws.com")

    @property
    def stack_id(self) -> str:
        """A deterministic stand-in for the stack id: its UUID (the deployment
        salt of the pipeline) depends only on account, region and stack name."""
        salt = uuid.uuid5(
            uuid.NAMESPACE_URL, f"local/{self.account}/{self.region}/{self.stack_name}"
        )
        return self._arn("cloudformation", f"stack/{self.stack_name}/{salt}")

    def _resource(self, logical_id: str) -> Mapping[str, Any]:
        resources: Mapping[str, Any] = self.template.get("Resources", {})
        if logical_id not in resources:
            raise UnresolvableError(f"no resource {logical_id!r} in the template")
        resource: Mapping[str, Any] = resources[logical_id]
        return resource

    def _name(self, logical_id: str, prop: str) -> str:
        props = self._resource(logical_id).get("Properties", {})
        return str(self.resolve(props[prop])) if prop in props else logical_id

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account}:{resource}"
        )

    # -- Ref / GetAtt -------------------------------------------------------------

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
        }
        if name in pseudo:
            return pseudo[name]
        parameters: Mapping[str, Any] = self.template.get("Parameters", {})
        if name in parameters:
            return parameters[name].get("Default", f"<{name}>")
        kind = self._resource(name).get("Type", "")
        if kind == FUNCTION_TYPE:
            return self._name(name, "FunctionName")
        if kind == "AWS::S3::Bucket":
            return self.bucket_name(name)
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", self._name(name, "TopicName"))
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.{self.url_suffix}/{self.account}/{name}"
        if kind == "AWS::IAM::Role":
            return self._name(name, "RoleName")
        if kind == "AWS::Logs::LogGroup":
            return self._name(name, "LogGroupName")
        if kind == TABLE_TYPE:
            return self._name(name, "TableName")
        if kind == "AWS::CloudWatch::Alarm":
            return self._name(name, "AlarmName")
        if kind == STATE_MACHINE_TYPE:
            return self._arn("states", f"stateMachine:{self._name(name, 'StateMachineName')}")
        return name

    def bucket_name(self, logical_id: str) -> str:
        props = self._resource(logical_id).get("Properties", {})
        if "BucketName" in props:
            return str(self.resolve(props["BucketName"]))
        # A valid, deterministic S3 name: lower case, at most 63 characters.
        return logical_id.lower()[:63]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self._resource(logical_id).get("Type", "")
        if kind == FUNCTION_TYPE and attribute == "Arn":
            return self._arn("lambda", f"function:{self.ref(logical_id)}")
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return self._arn("iam", f"role/{self.ref(logical_id)}", region=False)
        if kind == "AWS::S3::Bucket":
            name = self.bucket_name(logical_id)
            if attribute == "Arn":
                return f"arn:{self.partition}:s3:::{name}"
            if attribute in ("DomainName", "RegionalDomainName"):
                return f"{name}.s3.{self.region}.{self.url_suffix}"
        if kind == "AWS::SNS::Topic":
            if attribute == "TopicArn":
                return self.ref(logical_id)
            if attribute == "TopicName":
                return self._name(logical_id, "TopicName")
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return self._arn("logs", f"log-group:{self.ref(logical_id)}:*")
        if kind == TABLE_TYPE and attribute == "Arn":
            return self._arn("dynamodb", f"table/{self.ref(logical_id)}")
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return self._arn("kms", f"key/{logical_id}")
        if kind == "AWS::CloudWatch::Alarm" and attribute == "Arn":
            return self._arn("cloudwatch", f"alarm:{self._name(logical_id, 'AlarmName')}")
        if kind == STATE_MACHINE_TYPE:
            if attribute == "Arn":
                return self.ref(logical_id)
            if attribute == "Name":
                return self._name(logical_id, "StateMachineName")
        return f"<{logical_id}.{attribute}>"

    # -- everything -------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic inside ``value`` (recursively)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                delimiter, parts = arg
                return str(delimiter).join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::FindInMap":
                map_name, top, second = (self.resolve(a) for a in arg)
                try:
                    return self.template["Mappings"][map_name][top][second]
                except KeyError as e:
                    raise UnresolvableError(f"Fn::FindInMap {map_name}/{top}/{second}") from e
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text)).split(delimiter)
            if key.startswith("Fn::"):
                raise UnresolvableError(f"unsupported intrinsic {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VAR.sub(replace, str(text)).replace("${!", "${")


def _as_template(template_or_stack: Any) -> dict[str, Any]:
    if isinstance(template_or_stack, Mapping):
        return dict(template_or_stack)
    if isinstance(template_or_stack, (str, Path)):
        loaded: dict[str, Any] = json.loads(Path(template_or_stack).read_text(encoding="utf-8"))
        return loaded
    from aws_cdk.assertions import Template  # a Stack: only then is CDK needed

    return dict(Template.from_stack(template_or_stack).to_json())


def _stack_name(template_or_stack: Any) -> str:
    name = getattr(template_or_stack, "stack_name", None)
    if isinstance(name, str):
        return name
    if isinstance(template_or_stack, (str, Path)):
        return Path(template_or_stack).name.split(".")[0]
    return "Pipeline"


def state_machine_ids(template: Mapping[str, Any]) -> list[str]:
    return [
        lid
        for lid, res in template.get("Resources", {}).items()
        if res.get("Type") == STATE_MACHINE_TYPE
    ]


def extract_definition(
    template_or_stack: Any,
    *,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
    logical_id: str | None = None,
) -> dict[str, Any]:
    """The state machine's definition as plain ASL JSON.

    ``template_or_stack``: a template dict, a path to a ``*.template.json`` or
    a CDK ``Stack``. With several state machines, pass ``logical_id``.
    """
    template = _as_template(template_or_stack)
    resolver = Resolver(template, region, account, _stack_name(template_or_stack))
    ids = state_machine_ids(template)
    if logical_id is None and len(ids) > 1:
        # The custom-resource Provider framework's own waiter is not the pipeline.
        ids = [lid for lid in ids if "waiterstatemachine" not in lid.lower()]
    if logical_id is None:
        if len(ids) != 1:
            raise ValueError(f"expected one state machine, found {ids}; pass logical_id")
        logical_id = ids[0]
    props = template["Resources"][logical_id]["Properties"]
    if "Definition" in props:
        definition: dict[str, Any] = resolver.resolve(props["Definition"])
        return definition
    raw = props["DefinitionString"]
    if isinstance(raw, dict) and set(raw) == {"Fn::Join"}:
        delimiter, parts = raw["Fn::Join"]
        # Intrinsic values land inside JSON strings: escape them as JSON would.
        text = str(delimiter).join(
            p if isinstance(p, str) else json.dumps(str(resolver.resolve(p)))[1:-1] for p in parts
        )
    else:
        text = str(resolver.resolve(raw))
    for name, value in props.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + name + "}", str(resolver.resolve(value)))
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def lambda_functions(
    template: Any,
    *,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, LambdaFunctionInfo]:
    """Every Lambda of the template by logical id: handler, resolved env, ARN."""
    resolved_template = _as_template(template)
    resolver = Resolver(resolved_template, region, account, _stack_name(template))
    out: dict[str, LambdaFunctionInfo] = {}
    for lid, res in resolved_template.get("Resources", {}).items():
        if res.get("Type") != FUNCTION_TYPE:
            continue
        props = res.get("Properties", {})
        env = props.get("Environment", {}).get("Variables", {})
        out[lid] = LambdaFunctionInfo(
            logical_id=lid,
            function_name=str(resolver.ref(lid)),
            arn=str(resolver.get_att(lid, "Arn")),
            handler=str(props.get("Handler", "")),
            runtime=str(props.get("Runtime", "")),
            environment={k: str(resolver.resolve(v)) for k, v in env.items()},
            timeout=int(props.get("Timeout", 3)),
            memory_size=int(props.get("MemorySize", 128)),
        )
    return out


def lambda_functions_by_arn(
    template: Any, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> dict[str, LambdaFunctionInfo]:
    """Same as :func:`lambda_functions`, keyed by the ARN the ASL ``Resource`` uses."""
    functions = lambda_functions(template, region=region, account=account)
    return {info["arn"]: info for info in functions.values()}


def stack_outputs(
    template: Any, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> dict[str, str]:
    """The template's Outputs, resolved like everything else."""
    resolved_template = _as_template(template)
    resolver = Resolver(resolved_template, region, account, _stack_name(template))
    return {
        name: str(resolver.resolve(output["Value"]))
        for name, output in resolved_template.get("Outputs", {}).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stacks.asl",
        description="Print the state machine of a synthesized template as plain ASL JSON.",
    )
    parser.add_argument("template", type=Path, help="cdk.out/<Stack>.template.json")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    parser.add_argument("--logical-id", default=None, help="with several state machines")
    parser.add_argument(
        "--functions", action="store_true", help="print the Lambda specs (by ARN) instead"
    )
    args = parser.parse_args(argv)
    result: Any
    if args.functions:
        result = lambda_functions_by_arn(args.template, region=args.region, account=args.account)
    else:
        result = extract_definition(
            args.template, region=args.region, account=args.account, logical_id=args.logical_id
        )
    json.dump(result, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
