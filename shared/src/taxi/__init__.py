"""Shared NYC green-taxi trip-duration code that every level builds on.

Data and model (no MLOps tool imported): ``zones``, ``generator``, ``loader``, ``validation``, ``schema``,
``months``, ``model``, ``trip`` (the pydantic request model of every API), ``smoke``, ``settings``.

Tool glue that several levels share, each behind an extra so a level installs only what it uses:
``serving`` (FastAPI core; extra ``taxi-shared[serving]``) and ``tracking`` (MLflow glue; extra
``taxi-shared[tracking]``). Nothing here does work at import time.
"""
