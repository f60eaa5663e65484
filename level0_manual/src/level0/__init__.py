"""Level 0 - No MLOps: the scoring script the app team wrote after the notebook handed over a pickle."""
