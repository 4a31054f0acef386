"""Progress of a local run as phases (local/cli/progress.py)."""

from __future__ import annotations

import io

from local.account.synth import synthesize
from local.cli.progress import PHASES, PhaseProgress, job_number

POLL = ["StartTuning"] + ["WaitForTuning", "DescribeTuning", "TuningStatus"] * 10


def _states(definition: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                found.update(_states(state[key]))
        for branch in state.get("Branches", []):
            found.update(_states(branch))
    return found


def _names_a_failure(state: dict) -> bool:
    """A Fail state, or a Pass that names a failure on its way to NotifyFailure:
    both are shown under their own name."""
    return state["Type"] == "Fail" or (
        state["Type"] == "Pass" and state.get("Next") == "NotifyFailure"
    )


def test_every_state_but_the_failures_belongs_to_a_phase() -> None:
    definition = synthesize().definition(region="us-east-1", account="123456789012")
    states = _states(definition)
    unlisted = sorted(n for n, s in states.items() if n not in PHASES and not _names_a_failure(s))
    assert unlisted == []
    assert sorted(n for n in PHASES if n not in states) == []  # no stale names either


def _job(n: int, value: float | None, status: str = "Completed") -> dict:
    return {
        "name": f"mnist-ll-run-0123abcd-{n:03d}-deadbeef",
        "status": status,
        "objective": value,
        "metric_name": "validation:binary_f_beta",
    }


def test_off_a_terminal_each_phase_is_one_line_and_tuning_sums_up() -> None:
    out = io.StringIO()
    clock = iter(float(i) for i in range(1000))
    progress = PhaseProgress(total_jobs=3, stream=out, tty=False, clock=lambda: next(clock))
    for i, state in enumerate(["ValidateInput", "ModelSource", "ConvertDataset", *POLL]):
        progress.state(state, i / 10)
        if state == "DescribeTuning" and i in (5, 8, 11):
            progress.job(_job(i // 3, {5: 0.91, 8: 0.95, 11: None}[i]))
    for state in ("QualityGate", "RegisterModel", "Deploy", "Evaluate", "Succeeded"):
        progress.state(state, 5.0)
    progress.finish("SUCCEEDED")
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == [
        "input", "data", "tuning", "tuning", "registry", "deploy", "evaluate",
    ]  # fmt: skip
    summary = lines[3]
    assert "3/3 jobs done, best validation:binary_f_beta 0.9500 (job 002)" in summary
    assert "\r" not in out.getvalue()
    assert progress.lines == len(lines)


def test_on_a_terminal_the_phase_line_updates_in_place() -> None:
    out = io.StringIO()
    progress = PhaseProgress(total_jobs=2, stream=out, tty=True, clock=lambda: 0.0)
    progress.state("StartTuning", 1.0)
    progress.job(_job(1, 0.9))
    progress.job(_job(2, None, "Failed"))
    progress.state("RegisterModel", 3.0)
    progress.finish("SUCCEEDED")
    text = out.getvalue()
    assert (
        "\r\x1b[2K  tuning     1/2 jobs done, best validation:binary_f_beta 0.9000 (job 001)"
        in text
    )
    assert "2/2 jobs done, best validation:binary_f_beta 0.9000 (job 001), 1 not completed" in text
    assert text.count("\n") == 2  # one finished line per phase


def test_a_failure_state_is_its_own_phase_and_notes_pass_through() -> None:
    out = io.StringIO()
    progress = PhaseProgress(total_jobs=1, stream=out, tty=False)
    progress.state("Deploy", 1.0)
    progress.note("      waiting for the endpoint lease held by run-a")
    progress.state("EndpointBusy", 2.0)
    lines = out.getvalue().splitlines()
    assert lines[1] == "  waiting for the endpoint lease held by run-a"
    assert lines[2].split()[0] == "EndpointBusy"


def test_job_numbers_come_from_the_training_job_names() -> None:
    assert job_number("mnist-ll-local-20261206-6f4f654a-002-66dada6c") == "002"
    assert job_number("custom") == "custom"
