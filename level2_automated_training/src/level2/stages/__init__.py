"""The DVC pipeline's stages, one module each (dvc.yaml runs `level2 stage NAME` in the level folder and
lists each module as that stage's code dependency).

Each stage reads its group of params.yaml, reads its deps and writes its outs; train and evaluate also
record the run in MLflow, register adds a version to the MLflow Model Registry.
"""

NAMES = ("ingest", "validate", "prepare", "train", "evaluate", "register")
