"""EventBridge rules of the synthesized template, for the events moto does
not emit: the local SageMaker's "SageMaker Model Package State Change".

Each ``AWS::Events::Rule`` with an event pattern and Lambda targets becomes a
:class:`LocalRule`; :meth:`LocalEventRules.put` matches an event against
every rule (exact values, nested ``detail``, as EventBridge does for the
patterns the stack uses) and invokes the matching targets in a background
thread through the same in-process Lambda dispatcher the state machine uses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.account.lambda_dispatch import LambdaDispatcher
from stacks import asl


@dataclass(frozen=True)
class LocalRule:
    logical_id: str
    pattern: Mapping[str, Any]
    targets: tuple[str, ...]


@dataclass
class Delivery:
    rule: str
    target: str
    event: dict[str, Any]
    response: Any = None
    error: bool = False
    done: threading.Event = field(default_factory=threading.Event)


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge matching for exact-value lists and nested objects."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            values = actual if isinstance(actual, list) else [actual]
            if not any(v in expected for v in values):
                return False
        elif expected != actual:
            return False
    return True


def rules_from_template(template: Mapping[str, Any], resolver: asl.Resolver) -> list[LocalRule]:
    out: list[LocalRule] = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        props = resolver.resolve(resource.get("Properties", {}))
        if "EventPattern" not in props:
            continue
        targets = tuple(
            str(t["Arn"]) for t in props.get("Targets", []) if ":lambda:" in str(t.get("Arn"))
        )
        out.append(LocalRule(logical_id, props["EventPattern"], targets))
    return out


class LocalEventRules:
    """Delivers events to the template's rules' Lambda targets."""

    def __init__(self, rules: list[LocalRule], dispatcher: LambdaDispatcher) -> None:
        self.rules = rules
        self.dispatcher = dispatcher
        self.deliveries: list[Delivery] = []
        self._threads: list[threading.Thread] = []

    def put(self, event: dict[str, Any]) -> list[Delivery]:
        """Invoke every matching rule's targets (asynchronously, as EventBridge does)."""
        started: list[Delivery] = []
        for rule in self.rules:
            if not matches(rule.pattern, event):
                continue
            for target in rule.targets:
                delivery = Delivery(rule.logical_id, target, event)
                self.deliveries.append(delivery)
                started.append(delivery)
                thread = threading.Thread(
                    target=self._deliver, args=(delivery,), name=f"event-{rule.logical_id}"
                )
                thread.daemon = True
                self._threads.append(thread)
                thread.start()
        return started

    def _deliver(self, delivery: Delivery) -> None:
        try:
            body, failed = self.dispatcher.invoke(delivery.target, json.dumps(delivery.event))
            delivery.response = json.loads(body or b"null")
            delivery.error = failed
        finally:
            delivery.done.set()

    def wait_idle(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)
