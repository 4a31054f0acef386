"""The command lines of ``python -m local``: ``run`` (its input checked in
:mod:`.main`, then run by :mod:`.run_cmd`, the report in :mod:`.report`),
``services`` (:mod:`.services_cmd`), ``approve`` (:mod:`.approve`) and
``make-dataset`` (:mod:`.make_dataset`).

Imports run one way: the top of the house. This package may import
:mod:`local.account` and everything below it; nothing imports it but
``local/__main__.py``.
"""
