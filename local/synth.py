"""Take the pipeline from ``cdk synth`` output, not from a hand-written copy.

:func:`synthesize` runs ``app.py`` (asset bundling skipped: the local run
imports the handlers from the source tree) and caches the template under
``.build/`` keyed by a hash of the CDK sources. :class:`SynthesizedPipeline`
resolves the CloudFormation intrinsics in the state machine definition and
the Lambda environments against the local stand-ins, so the local run
executes exactly the ASL that ``cdk deploy`` would create.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.lambda_dispatch import LambdaFunction

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".build"
_SOURCES = ("app.py", "cdk.json", "stacks", "pipeline_core/config.py")


class SynthError(RuntimeError):
    """The CDK app did not synthesize, or its template lacks the pipeline."""


def _source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for entry in _SOURCES:
        path = root / entry
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or not file.exists():
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def synthesize(root: Path = ROOT, use_cache: bool = True) -> SynthesizedPipeline:
    """Synthesize the app (or reuse a cached synth of the same sources)."""
    key = _source_hash(root)
    outdir = root / ".build" / f"cdk.out.local-{key}"
    templates = sorted(outdir.glob("*.template.json")) if use_cache else []
    if not templates:
        env = {
            **os.environ,
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps({"aws:cdk:bundling-stacks": []}),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }
        proc = subprocess.run(
            [sys.executable, str(root / "app.py")],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if proc.returncode != 0:
            raise SynthError(f"cdk synth failed:\n{proc.stderr[-4000:]}")
        templates = sorted(outdir.glob("*.template.json"))
    for path in templates:
        template = json.loads(path.read_text())
        if any(
            r.get("Type") == "AWS::StepFunctions::StateMachine"
            for r in template.get("Resources", {}).values()
        ):
            return SynthesizedPipeline(template, source=path)
    raise SynthError(f"no template with a state machine in {outdir}")


@dataclass
class _Context:
    region: str
    account: str
    refs: dict[str, Any]


class SynthesizedPipeline:
    """The synthesized template, with intrinsic functions resolved on demand."""

    def __init__(self, template: dict[str, Any], source: Path | None = None) -> None:
        self.template = template
        self.source = source
        self.resources: dict[str, dict[str, Any]] = template.get("Resources", {})

    # -- public -----------------------------------------------------------------

    def state_machine_id(self) -> str:
        ids = [
            lid
            for lid, r in self.resources.items()
            if r.get("Type") == "AWS::StepFunctions::StateMachine"
        ]
        if not ids:
            raise SynthError("the template has no state machine")
        # The pipeline is the state machine that invokes our handlers.
        for lid in ids:
            body = json.dumps(self.resources[lid]["Properties"].get("DefinitionString", ""))
            if any(fid in body for fid in self._function_ids()):
                return lid
        return ids[0]

    def definition(
        self, *, bucket: str, topic_arn: str, region: str, account: str
    ) -> dict[str, Any]:
        ctx = self._context(bucket, topic_arn, region, account)
        props = self.resources[self.state_machine_id()]["Properties"]
        raw = props.get("DefinitionString")
        if raw is None:
            raise SynthError("state machine has no inline DefinitionString")
        text = self._resolve(raw, ctx)
        if not isinstance(text, str):
            raise SynthError("DefinitionString did not resolve to a string")
        definition: dict[str, Any] = json.loads(text)
        return definition

    def lambda_functions(
        self,
        *,
        bucket: str,
        topic_arn: str,
        region: str,
        account: str,
        overrides: dict[str, str] | None = None,
        poll_seconds: int | None = None,
    ) -> dict[str, LambdaFunction]:
        """Our pipeline's functions keyed by ARN, with resolved environments."""
        ctx = self._context(bucket, topic_arn, region, account)
        out: dict[str, LambdaFunction] = {}
        for lid in self._function_ids():
            props = self.resources[lid]["Properties"]
            raw_env = props.get("Environment", {}).get("Variables", {})
            env = {k: str(self._resolve(v, ctx)) for k, v in raw_env.items()}
            if poll_seconds is not None and "PIPELINE_CONFIG" in env:
                config = json.loads(env["PIPELINE_CONFIG"])
                config["poll_seconds"] = poll_seconds
                env["PIPELINE_CONFIG"] = json.dumps(config, sort_keys=True)
            env.update(overrides or {})
            arn = f"arn:aws:lambda:{region}:{account}:function:{lid}"
            out[arn] = LambdaFunction(
                logical_id=lid,
                handler=props["Handler"],
                environment=env,
                timeout_seconds=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
            )
        return out

    # -- internals ---------------------------------------------------------------

    def _function_ids(self) -> list[str]:
        return [
            lid
            for lid, r in self.resources.items()
            if r.get("Type") == "AWS::Lambda::Function"
            and str(r.get("Properties", {}).get("Handler", "")).startswith("lambdas.")
        ]

    def _context(self, bucket: str, topic_arn: str, region: str, account: str) -> _Context:
        refs: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
            "AWS::NoValue": None,
        }
        for lid, res in self.resources.items():
            kind = res.get("Type")
            if kind == "AWS::S3::Bucket":
                refs[lid] = bucket
            elif kind == "AWS::SNS::Topic":
                refs[lid] = topic_arn
            elif kind == "AWS::Lambda::Function":
                refs[lid] = lid
            else:
                refs[lid] = lid
        return _Context(region, account, refs)

    def _get_att(self, lid: str, attr: str, ctx: _Context) -> Any:
        kind = self.resources.get(lid, {}).get("Type", "")
        if kind == "AWS::Lambda::Function" and attr == "Arn":
            return f"arn:aws:lambda:{ctx.region}:{ctx.account}:function:{lid}"
        if kind == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{ctx.refs[lid]}"
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return f"arn:aws:iam::{ctx.account}:role/{lid}"
        if kind == "AWS::SNS::Topic" and attr in ("TopicArn", "Arn"):
            return ctx.refs[lid]
        return f"arn:aws:local:{ctx.region}:{ctx.account}:{lid}/{attr}"

    def _resolve(self, node: Any, ctx: _Context) -> Any:
        if isinstance(node, list):
            return [self._resolve(n, ctx) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                if arg not in ctx.refs:
                    raise SynthError(f"unresolvable Ref {arg}")
                return ctx.refs[arg]
            if fn == "Fn::GetAtt":
                lid, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(lid, attr, ctx)
            if fn == "Fn::Join":
                sep, parts = arg
                return str(sep).join(str(self._resolve(p, ctx)) for p in parts)
            if fn == "Fn::FindInMap":
                name, top, second = (self._resolve(a, ctx) for a in arg[:3])
                return self.template["Mappings"][name][top][second]
            if fn == "Fn::Select":
                index, items = arg
                return self._resolve(items, ctx)[int(self._resolve(index, ctx))]
            if fn == "Fn::Split":
                sep, text = arg
                return str(self._resolve(text, ctx)).split(sep)
            if fn == "Fn::Sub":
                template, variables = (arg, {}) if isinstance(arg, str) else arg
                values = {k: self._resolve(v, ctx) for k, v in variables.items()}

                def sub(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in values:
                        return str(values[name])
                    if "." in name:
                        lid, attr = name.split(".", 1)
                        return str(self._get_att(lid, attr, ctx))
                    return str(ctx.refs[name])

                return re.sub(r"\$\{([^}!]+)\}", sub, template)
        return {k: self._resolve(v, ctx) for k, v in node.items()}
