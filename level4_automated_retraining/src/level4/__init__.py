"""Level 4 - Full MLOps: the running model is watched (prediction log, feedback, Evidently monitoring)."""
