"""What ``make test`` does once before its workers start: ``python -m tests.prewarm``.

Every pytest worker imports every test module to collect the suite, and the
tests start other interpreters (the SDK venvs, ``cfn-lint``, ``python -m
local``). On a fresh clone nothing has bytecode yet, so each of them compiles
what it imports, and three workers compile the same modules at the same time.
This compiles it once, two interpreters at a time, as ``pip install`` would have
at install time (uv installs without compiling):

- the local synth (its cache in ``.build/`` is what the workers read) and the
  modules of the local account and the local run;
- the test modules themselves (pytest's assertion rewriting caches them);
- the SageMaker SDKs of ``.venv-sdk`` and ``.venv-sdk3`` as the SDK tests
  import them, and ``cfn-lint`` with its rules.

The other interpreters and the collection are not checked here: what fails
there fails again in the test that needs it, with its own message. A synth
that fails stops ``make test`` here, as it would stop every test that reads it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDK_IMPORTS = {
    ".venv-sdk": "import sagemaker, sagemaker.amazon.common, sagemaker.model_card.model_card",
    ".venv-sdk3": (
        "import sagemaker.core.resources, sagemaker.core.helper.session_helper, "
        "sagemaker.serve, sagemaker.train, sagemaker.train.tuner"
    ),
}
_TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}


def _other_interpreters(work: Path) -> None:
    """The SDK venvs' and cfn-lint's imports, one after the other."""
    template = work / "template.json"
    template.write_text(json.dumps(_TEMPLATE))
    commands = [
        [str(python), "-c", imports]
        for venv, imports in SDK_IMPORTS.items()
        if (python := ROOT / venv / "bin" / "python").exists()
    ]
    commands.append([str(Path(sys.executable).parent / "cfn-lint"), str(template)])
    env = {**os.environ, "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    for command in commands:
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prewarm-") as tmp:
        others = threading.Thread(target=_other_interpreters, args=(Path(tmp),))
        others.start()
        import aws_cdk  # noqa: F401
        import moto.server  # noqa: F401

        import local.account.runner
        import local.cli.run_cmd  # noqa: F401
        import training.trainer  # noqa: F401
        from local.account.synth import synthesize

        synthesize()
        import pytest

        with contextlib.redirect_stdout(io.StringIO()):
            pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider"])
        others.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
