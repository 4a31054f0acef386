"""moto 5.2.5's stepfunctions service, corrected where AWS answers differently.

With ``execute_state_machine`` on, moto runs executions in its ASL
interpreter (``moto.stepfunctions.parser``). Where that answers otherwise
than AWS:

- **StopExecution** (moto ``StateMachine.stop_execution`` and the parser's
  ``ExecutionWorker.stop``): moto drops the request's ``error`` and
  ``cause``, answers no ``stopDate`` (the execution keeps ``RUNNING`` until
  its interpreter thread notices), answers HTTP 500 when the call lands
  before the worker thread has built its environment (``env`` is ``None``),
  and lets a state that fails after the stop overwrite ``ABORTED`` with
  ``FAILED``. AWS: the execution is ``ABORTED`` when the call returns, with
  the given error and cause, and its history ends with ``ExecutionAborted``.
- **GetExecutionHistory** (moto ``StepFunctionResponse.get_execution_history``):
  moto ignores ``reverseOrder``, ``maxResults`` and ``nextToken`` (and deep-copies
  the whole history on every call; a page is written as JSON from its own
  events, as moto's serializer writes them but without its cost).
- **StartSyncExecution** (moto has no handler): AWS answers
  ``StateMachineTypeNotSupported`` for a STANDARD state machine and runs an
  EXPRESS one to its end.

And one change of speed, not of answers: moto parses a definition with its
ANTLR grammar (pure Python) at CreateStateMachine (two or three times, for its
checks) and again at every StartExecution, about half a second each for the
pipeline's definition. :func:`_parse_once` keeps each definition's parse tree
(read only once built) and the evaluation components moto's parse built from
it, as a pickle: every execution still gets components of its own, unpickled
from that (a few milliseconds, where moto's Preprocessor took a tenth of a
second or more), and a definition whose components do not pickle gets them
from the Preprocessor as before. Likewise moto builds a new boto3 client for
every task state it runs; :func:`_reuse_task_clients` keeps one per region,
service and endpoint.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import pickle
import sys
import threading
import uuid
from typing import Any

_INSTALLED = False
_LOCK = threading.Lock()
#: GetExecutionHistory: "The default is 100 and the maximum allowed page size is 1000."
_DEFAULT_PAGE = 100
_MAX_PAGE = 1000


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def stop(execution: Any, error: str | None, cause: str | None) -> None:
    """Stop ``execution`` as AWS does: ``ABORTED`` with ``stopDate``, ``error``
    and ``cause`` at once; its interpreter stops before its next state."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    with _LOCK:
        if execution.exec_status != ExecutionStatus.RUNNING:
            return  # ended already: AWS answers its stopDate and changes nothing
        stop_date = _now()
        execution.exec_status = ExecutionStatus.ABORTED
        execution.stop_date = stop_date
        execution.error = error
        execution.cause = cause
        worker = execution.exec_worker
        if worker is None:
            return
        env = worker.env
        if env is not None and env.is_running():
            env.set_stop(stop_date=stop_date, cause=cause, error=error)
        elif env is not None:
            # Built, but its program has not started: it stops as it starts (_eval).
            env._pending_stop = (stop_date, cause, error)
        else:
            # The worker thread has not built its environment yet (moto: env is
            # None, and ExecutionWorker.stop fails): passed on in _environment.
            worker._pending_stop = (stop_date, cause, error)


def _install_parser() -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.component.program.program import Program
    from moto.stepfunctions.parser.backend import execution as parser_execution
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    build_environment = ExecutionWorker._get_evaluation_environment

    def _environment(self: ExecutionWorker) -> Any:
        env: Any = build_environment(self)
        with _LOCK:
            self.env = env
            env._pending_stop = getattr(self, "_pending_stop", None)
        return env

    ExecutionWorker._get_evaluation_environment = _environment  # type: ignore[method-assign]

    program_eval = Program.eval

    def _eval(self: Program, env: Any) -> None:
        with _LOCK:
            pending = getattr(env, "_pending_stop", None)
            # Running from here on, so a StopExecution from now reaches set_stop.
            env.next_state_name = self.start_at.start_at_name
            if pending is not None:
                stop_date, cause, error = pending
                env.set_stop(stop_date=stop_date, cause=cause, error=error)
        if pending is None:
            program_eval(self, env)
        else:
            self._eval_body(env)  # runs no state; records ExecutionAborted

    Program.eval = _eval  # type: ignore[method-assign]

    comm = parser_execution.BaseExecutionWorkerCommunication
    reflect: Any = comm._reflect_execution_status

    def _reflect(self: Any) -> None:
        if self.execution.exec_status == ExecutionStatus.ABORTED:
            return  # StopExecution decided the ending; a late state cannot change it
        reflect(self)

    comm._reflect_execution_status = _reflect  # type: ignore[method-assign]


def _page(events: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """One page of a history (oldest first in ``events``). The token holds the
    id of the last event returned, not an offset: a running execution keeps
    adding events, and a newest-first offset would shift under them."""
    from moto.stepfunctions.exceptions import InvalidToken

    reverse = bool(params.get("reverseOrder"))
    size = min(int(params.get("maxResults") or _DEFAULT_PAGE), _MAX_PAGE)
    token = params.get("nextToken")
    if token:
        try:
            last = int(json.loads(base64.urlsafe_b64decode(token.encode()))["last_id"])
        except Exception as e:
            raise InvalidToken("the nextToken is not one this call returned") from e
        if reverse:
            events = [e for e in events if int(e["id"]) < last]
        else:
            events = [e for e in events if int(e["id"]) > last]
    if reverse:
        events = events[::-1]
    out: dict[str, Any] = {"events": events[:size]}
    if len(events) > size:
        last_id = json.dumps({"last_id": int(events[size - 1]["id"])}).encode()
        out["nextToken"] = base64.urlsafe_b64encode(last_id).decode()
    return out


def _epoch(value: Any) -> int | float:
    """An ISO timestamp as moto's serializer writes it in JSON (epoch seconds)."""
    from botocore.utils import parse_to_aware_datetime
    from moto.core.serialize import TimestampSerializer

    return TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(value))


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def history_page_json(page: dict[str, Any]) -> str:
    """A GetExecutionHistory page (``events``, ``nextToken``) as the JSON body
    AWS answers: absent members left out, and ``timestamp`` (the only
    timestamp member of the output shape; moto keeps it as an ISO string) in
    epoch seconds."""
    body = _json_value(page)
    for event in body.get("events", []):
        if "timestamp" in event:
            event["timestamp"] = _epoch(event["timestamp"])
    return json.dumps(body, separators=(",", ":"))


def _install_responses() -> None:
    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    class TypeNotSupported(AWSError):
        TYPE = "StateMachineTypeNotSupported"
        STATUS = 400

    def stop_execution(self: StepFunctionResponse) -> ActionResult:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)
        error, cause = self._get_param("error"), self._get_param("cause")
        if hasattr(execution, "exec_worker"):
            stop(execution, error, cause)
        elif execution.status == "RUNNING":  # moto without execute_state_machine
            execution.stop()
            execution.error, execution.cause = error, cause
        return ActionResult({"stopDate": execution.stop_date})

    def get_execution_history(self: StepFunctionResponse) -> ActionResult | str:
        arn = self._get_param("executionArn")
        params = {
            "reverseOrder": self._get_param("reverseOrder"),
            "maxResults": self._get_param("maxResults"),
            "nextToken": self._get_param("nextToken"),
        }
        execution = self.stepfunction_backend.describe_execution(arn)
        env = getattr(getattr(execution, "exec_worker", None), "env", None)
        manager = getattr(env, "event_manager", None)
        if manager is None:  # not started yet, or moto without execute_state_machine
            history = self.stepfunction_backend.get_execution_history(arn)
            return ActionResult(_page(list(history.get("events") or []), params))
        # moto deep-copies the whole history on every call, and its generic
        # serializer takes about 1.5 ms an event (HistoryEvent has some 60
        # optional members); the page is written as JSON under the history's
        # lock instead, as moto's serializer writes it (a test compares them).
        with manager._mutex:
            return history_page_json(_page(list(manager._history_event_list), params))

    def start_sync_execution(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        arn = self._get_param("stateMachineArn")
        machine = backend.describe_state_machine(arn)
        # moto keeps the type in .type (its .sm_type always reads STANDARD).
        if str(getattr(machine, "type", None) or "STANDARD") != "EXPRESS":
            # botocore: StartSyncExecution "is only supported for EXPRESS state machines".
            raise TypeNotSupported("This operation is not supported by this type of state machine")
        return ActionResult(
            _run_express(
                backend, machine, self._get_param("name"), self._get_param("input") or "{}"
            )
        )

    def start_execution(self: StepFunctionResponse) -> ActionResult:
        # moto 5.2.5 names an execution started without a name "None"; AWS
        # generates a UUID ("If you don't provide a name for the execution,
        # Step Functions automatically generates a universally unique
        # identifier (UUID) as the execution name").
        execution = self.stepfunction_backend.start_execution(
            self._get_param("stateMachineArn"),
            self._get_param("name") or str(uuid.uuid4()),
            self._get_param("input", if_none="{}"),
        )
        return ActionResult(
            {"executionArn": execution.execution_arn, "startDate": execution.start_date}
        )

    StepFunctionResponse.start_execution = start_execution  # type: ignore[method-assign]
    StepFunctionResponse.stop_execution = stop_execution  # type: ignore[method-assign]
    StepFunctionResponse.get_execution_history = get_execution_history  # type: ignore[method-assign, assignment]
    StepFunctionResponse.start_sync_execution = start_sync_execution  # type: ignore[attr-defined]


def _run_express(backend: Any, machine: Any, name: str | None, data: str) -> dict[str, Any]:
    """Run an EXPRESS state machine to its end (moto's parser ``SyncExecution``)."""
    import copy

    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.backend.execution import SyncExecution

    try:
        json.loads(data)
    except ValueError as e:
        raise InvalidExecutionInput(str(e)) from e
    exec_name = name or str(uuid.uuid4())
    clone = copy.deepcopy(
        machine, {id(machine.executions): [], id(machine.backend): machine.backend}
    )
    clone.sm_type = clone.type
    execution = SyncExecution(
        name=exec_name,
        sm_type=clone.type,
        role_arn=clone.roleArn,
        exec_arn=(
            f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}"
            f":express:{machine.name}:{exec_name}:{uuid.uuid4()}"
        ),
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=clone,
        start_date=_now(),
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=data,
    )
    execution.start()
    result: dict[str, Any] = dict(execution.to_start_sync_execution_output())
    return result


def _send_task_failure_with_cause() -> None:
    """SendTaskFailure keeps its ``cause``.

    moto 5.2.5's ``StepFunctionResponse.send_task_failure`` reads only
    ``taskToken`` and ``error`` and drops ``cause``, so the waiting task fails
    with ``Cause`` unset and a Catch's ``$.error.Cause`` (hence the Fail
    state's cause) is empty. AWS hands the cause on: "cause: A more detailed
    explanation of the cause of the failure" (SendTaskFailure). The ASL
    interpreter's backend already takes ``cause``; only the response layer
    (and the plain backend's signature) lose it.
    """
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        task_token = self._get_param("taskToken")
        error = self._get_param("error")
        cause = self._get_param("cause")
        self.stepfunction_backend.send_task_failure(task_token, error=error, cause=cause)
        return EmptyResult()

    def backend_send_task_failure(
        self: Any, task_token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        return None  # without the ASL interpreter no task waits on a token

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
    StepFunctionBackend.send_task_failure = backend_send_task_failure  # type: ignore[method-assign]


def _parse_once() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    parse_whole = AmazonStateLanguageParser.parse

    @functools.lru_cache(maxsize=64)
    def parsed(definition: str) -> tuple[bytes | None, Any]:
        # moto's own parse (a syntax error raises, and lru_cache keeps no
        # exception), and its components as a pickle when they can be one.
        program, tree = parse_whole(definition)
        try:
            return pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL), tree
        except (pickle.PicklingError, TypeError, AttributeError):
            return None, tree

    def parse(definition: str) -> tuple[Any, Any]:
        blob, tree = parsed(definition)
        if blob is None:
            return Preprocessor().visit(tree), tree
        return pickle.loads(blob), tree  # noqa: S301 - our own pickle, made just above

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _reuse_task_clients() -> None:
    # moto's boto_client_for signs with fixed keys whatever the state's
    # credentials, so region, service and endpoint name the client.
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.utils import boto_client

    # The interpreter's modules bind the function by name: imported first.
    from moto.stepfunctions.parser.backend import execution  # noqa: F401

    build = boto_client.boto_client_for
    clients: dict[tuple[str, str, bool, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, botocore_stubber.enabled, moto_server_port())
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = build(region, service, state_credentials)
        return client

    for name, module in list(sys.modules.items()):
        # __dict__, not getattr: a deferred package (moto_fixes.imports) would load.
        if name.startswith("moto.stepfunctions.") and vars(module).get("boto_client_for") is build:
            setattr(module, "boto_client_for", boto_client_for)  # noqa: B010


def install() -> None:
    """Apply this module's fixes (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _parse_once()
    _reuse_task_clients()
    _install_parser()
    _install_responses()
    _send_task_failure_with_cause()
    _INSTALLED = True
