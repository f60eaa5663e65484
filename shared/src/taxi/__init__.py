"""Shared NYC green-taxi trip-duration code that every level builds on.

Data and model (no MLOps tool imported): ``zones``, ``generator``, ``loader``, ``validation``, ``schema``,
``months``, ``model``, ``trip`` (the pydantic request model of every API), ``smoke``, ``settings``.

Tool glue that several levels share, each behind an extra so a level installs only what it uses:
``serving`` (FastAPI core; extra ``taxi-shared[serving]``), ``tracking`` (MLflow glue; extra
``taxi-shared[tracking]``), ``certification`` (extra ``taxi-shared[certification]``) and ``pipeline`` (the
DVC training stages and their CLI; extra ``taxi-shared[pipeline]``). Nothing here does work at import time.
"""
