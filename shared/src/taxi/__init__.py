"""Shared NYC green-taxi trip-duration code: data (generator, loader, validation) and the model.

Pure functions, no MLOps tool imported here; every level builds on this package.
"""
