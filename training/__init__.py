"""The local Linear Learner: trainer, tuner, HTTP endpoint and CLI.

Kept import-light on purpose: tuning workers are spawned processes that cap
their BLAS threads before numpy is loaded.
"""
