"""Shared core of the MNIST Linear Learner pipeline.

Pure Python (plus numpy) and free of Lambda specifics: the Lambda handlers,
the CDK stack and the local run all import from here.
"""
