"""The local run: the synthesized pipeline on embedded stand-ins for AWS."""
