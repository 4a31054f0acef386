"""The local SageMaker: an emulator of the control plane and runtime calls the
project and the SDK v2 flows make, one module per resource family.

- :mod:`.errors` — :class:`~.errors.ServiceError`, SageMaker's wire error (a leaf:
  it imports nothing of this package);
- :mod:`.state` — the shared state every family works on;
- :mod:`.tuning`, :mod:`.training_ops`, :mod:`.training_jobs` — training and tuning;
- :mod:`.endpoints` — models, endpoint configs and endpoints (with :mod:`.guardrails`);
- :mod:`.transform_jobs` — Batch Transform;
- :mod:`.registry` — model package groups and versions;
- :mod:`.search` — ``Search``;
- :mod:`.async_inference` — the runtime's ``InvokeEndpointAsync``;
- :mod:`.validation`, :mod:`.constraints`, :mod:`.failure_reasons`, :mod:`.paging`,
  :mod:`.channels` — what every call shares: botocore's shapes, AWS's documented
  rules, SageMaker's wording, List paging, training channels;
- :mod:`.service` — :class:`~.service.LocalSageMaker`, the families put together
  behind SageMaker's JSON protocol.

Imports run one way: this package may import :mod:`training` (through the
:mod:`.training_backend` seam and the algorithm's contracts) and
:mod:`pipeline_core`, never :mod:`local.account` or :mod:`local.cli`.
"""
