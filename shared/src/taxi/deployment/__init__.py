"""The release machinery of the levels with automated deployment (3 and 4), extra ``taxi-shared[deployment]``.

A candidate goes from the registry to production, or not, and every decision is recorded:

- ``taxi.deployment.certify``: the registry glue around the gates (``taxi.certification``): ``certify_version``
  on the frozen holdout of params.yaml or on a ``Holdout`` the caller hands in; the report logged and tagged;
- ``taxi.deployment.deployer``: alias transitions (``Deployer``: candidate -> staging -> challenger -> champion,
  rollback) and the deployment log (``DeploymentLog``), the history MLflow does not keep;
- ``taxi.deployment.load`` and ``taxi.deployment.canary``: a load generator, and the canary that compares the
  running service's challenger with its champion on live traffic;
- ``taxi.deployment.params``: a level's params.yaml: overrides (``apply_params``), the certification and canary
  sections checked before training;
- ``taxi.deployment.cd``: the CD steps (Prefect tasks) and the pipeline (``run_cd``) a level's flows call with
  a ``Release``: what differs between levels (its project, settings, service app, holdout, extra tags);
- ``taxi.deployment.serve``: the body of a level's ``serve`` command.

The modules are imported one by one (this file imports nothing): a ``status`` command or a service reading the
deployment log does not pay for Prefect, skops or scikit-learn.
"""


class DeploymentError(RuntimeError):
    """A step of the CD pipeline could not run (not a rejection: the pipeline itself failed)."""
