"""The local AWS account: moto's services on loopback (:mod:`.services`), the
synthesized template deployed into it (:mod:`.synth`, :mod:`.local_account`),
EventBridge rules and schedules (:mod:`.event_rules`), the state machine's
Lambda tasks run in-process (:mod:`.lambda_dispatch`), the local SageMaker
wired to the local Linear Learner (:mod:`.backend`), the MNIST cache
(:mod:`.mnist_cache`) and one execution run end to end (:mod:`.runner`).

Imports run one way: this package may import :mod:`local.emulator`,
:mod:`training`, :mod:`pipeline_core`, :mod:`lambdas` and :mod:`stacks`
(through ``app.py``'s synth), never :mod:`local.cli`.
"""
