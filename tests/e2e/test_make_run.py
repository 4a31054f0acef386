"""`make run ARGS='…'` passes JSON through untouched. The README's ``make run
ARGS=…`` examples run through make in ``tests/e2e/test_readme_examples.py``,
and the files a run writes are checked in ``tests/e2e/test_cli.py``."""

from __future__ import annotations

import pytest

from local.cli.make_args import ArgsSyntaxError, split_args


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '--input {"target_digit":3} --out runs/demo',
            ["--input", '{"target_digit":3}', "--out", "runs/demo"],
        ),
        ('--input {"a": 1, "b": [1, 2]}', ["--input", '{"a": 1, "b": [1, 2]}']),
        ("--input '{\"a\": \"x y\"}' --serve", ["--input", '{"a": "x y"}', "--serve"]),
        ('--out "my runs/demo"', ["--out", "my runs/demo"]),
        ("--input @my-input.json", ["--input", "@my-input.json"]),
        ("", []),
    ],
)  # fmt: skip
def test_split_args_keeps_json_whole(text: str, expected: list[str]) -> None:
    assert split_args(text) == expected


@pytest.mark.parametrize("text", ['--input {"a": 1', "--input '{", "--input ]"])
def test_split_args_rejects_unbalanced_input(text: str) -> None:
    with pytest.raises(ArgsSyntaxError):
        split_args(text)
