"""Level 1 - DevOps, no MLOps: ingest -> train -> hand-off -> a tested, containerised FastAPI service."""
