"""The local run: the synthesized pipeline on embedded stand-ins for AWS.

Three packages, imported one way only::

    local.cli  →  local.account  →  local.emulator  →  training / pipeline_core

- :mod:`local.cli` — the command lines (``python -m local run|services|approve|make-dataset``);
- :mod:`local.account` — the local AWS account: moto, the deployed template, events,
  schedules, Lambda dispatch;
- :mod:`local.emulator` — the local SageMaker.
"""
