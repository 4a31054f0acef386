"""Data phase: from after ValidateInput to the start of tuning (one function:
a later change may replace it whole, e.g. with a Distributed Map)."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from stacks.phases.common import JsonPath, PipelineFunctions, Steps


def data_phase(steps: Steps, f: PipelineFunctions, then: sfn.IChainable) -> sfn.IChainable:
    """ConvertDataset → ``then``; writes ``$.data``."""
    convert = steps.invoke(
        "ConvertDataset", f.convert, {"run": JsonPath.object_at("$.run")}, "$.data"
    )
    convert.next(then)
    return convert
