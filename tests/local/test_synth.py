"""The local synth's bytecode head start: the CDK modules it compiles in a
second process are the large ones ``app.py`` imports, in import order."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.account.synth import CDK_MODULES, ROOT, start_precompile, uncompiled

#: What CDK_MODULES names: every CDK module of at least this much source.
LARGE = 250_000

_LIST_IMPORTS = """
import json, os, sys
before = set(sys.modules)
import app
names = []
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if name in before or not name.startswith("aws_cdk") or not path.endswith(".py"):
        continue
    if os.path.getsize(path) >= {large} and module.__name__ == name:
        names.append(name)
print(json.dumps(names))
"""


def test_the_precompiled_modules_are_the_large_cdk_modules_app_py_imports_in_order() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LIST_IMPORTS.format(large=LARGE)],
        cwd=ROOT,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert tuple(json.loads(done.stdout.strip().splitlines()[-1])) == CDK_MODULES


def test_precompile_writes_the_bytecode_of_what_is_not_compiled_yet(tmp_path: Path) -> None:
    sources = [tmp_path / f"m{i}.py" for i in range(3)]
    for i, source in enumerate(sources):
        source.write_text(f"VALUE = {i}\n")
    cached = [Path(importlib.util.cache_from_source(str(s))) for s in sources]
    proc = start_precompile(sources)
    assert proc is not None and proc.wait(timeout=60) == 0
    assert all(c.is_file() for c in cached)
    assert start_precompile([]) is None


def test_uncompiled_lists_package_files_without_bytecode_and_imports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "precompile_probe"
    (top / "sub").mkdir(parents=True)
    (top / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (top / "sub" / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("precompile_probe", "precompile_probe.sub", "precompile_probe.missing", "no_such_pkg")
    assert uncompiled(names) == [top / "__init__.py", top / "sub" / "__init__.py"]
    assert "precompile_probe" not in sys.modules
    proc = start_precompile(uncompiled(names))
    assert proc is not None and proc.wait(timeout=60) == 0
    assert uncompiled(names) == []
