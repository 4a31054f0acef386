"""The state machine's phases, each a small function that returns a chain.

Built back to front, so each phase knows where it continues:
``end`` (failure handling) first, then ``evaluate``, ``deploy``, ``tuning``
and ``data``; :class:`stacks.state_machine.PipelineStateMachine` strings
ValidateInput in front. Every phase takes the shared :class:`Steps` (task
and error-state builders wired to the failure chain) and the functions.
"""

from stacks.phases.common import PipelineFunctions, Steps

__all__ = ["PipelineFunctions", "Steps"]
