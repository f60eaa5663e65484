"""The DVC pipeline's stages, one module each: ingest -> validate -> prepare -> train -> evaluate -> register.

Each stage is a function with explicit inputs and outputs (paths and params as arguments), so a test can
call it without DVC. dvc.yaml runs them as `level2 stage NAME --input ... --out ...` in the level folder,
declares the same paths as the stage's deps and outs, and lists each module as that stage's code dependency.
train and evaluate also record the run in MLflow; register adds a version to the MLflow Model Registry.
"""
