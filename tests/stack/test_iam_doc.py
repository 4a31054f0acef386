"""docs/IAM.md names every action the synthesized template grants."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack.conftest import Synth
from tests.stack.test_iam import _as_list, statements

DOC = Path(__file__).resolve().parents[2] / "docs" / "IAM.md"


@pytest.mark.parametrize("fixture", ["synthesized", "synthesized_kms"])
def test_every_granted_action_is_documented(fixture: str, request: pytest.FixtureRequest) -> None:
    s: Synth = request.getfixturevalue(fixture)
    text = DOC.read_text()
    undocumented = sorted(
        {
            action
            for _, st in statements(s)
            if st["Effect"] == "Allow" and "Principal" not in st
            for action in _as_list(st["Action"])
            if f"`{action}`" not in text
        }
    )
    assert undocumented == []


def test_every_role_is_documented(synthesized: Synth) -> None:
    text = DOC.read_text()
    for name in synthesized.stack.functions:
        assert f"**{name}**" in text
    for who in ("SageMaker execution role", "State machine", "Cleanup provider"):
        assert f"**{who}**" in text
