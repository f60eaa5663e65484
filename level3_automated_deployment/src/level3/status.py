"""Where things stand: every registered version (RMSE, training months, certified or not, failed gates,
aliases) and the last deployment events. ``level3 status`` prints it; so does the end of ``make run``."""

from __future__ import annotations

from mlflow import MlflowClient

from taxi.deployment.deployer import DeploymentLog


def status_lines(client: MlflowClient, name: str, log: DeploymentLog, last: int = 6, width: int = 160) -> list[str]:
    """The versions of ``name`` as a table, then the ``last`` events of the deployment log (each cut to ``width``)."""
    found = client.search_model_versions(f"name = '{name}'")
    if not found:
        return [f"no registered versions of '{name}' yet: `make cd` trains and deploys one"]
    aliases: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(number), []).append(alias)
    lines = [f"{'version':>7}  {'RMSE':>7}  {'train months':<24} {'certified':<9}  {'failed gates':<24} aliases"]
    for v in sorted(found, key=lambda v: int(v.version)):
        t = v.tags
        lines.append(
            f"{v.version:>7}  {t.get('rmse', '?'):>7}  {t.get('train_months', '?'):<24} {t.get('certified', '-'):<9}  "
            f"{t.get('failed_gates') or '-':<24} {', '.join('@' + a for a in sorted(aliases.get(str(v.version), [])))}"
        )
    events = log.events(name)
    if events:
        lines.append(f"last deployment events ({log.path}):")
        for event in events[-last:]:
            line = event.describe()
            lines.append(f"  {line[: width - 3] + '...' if len(line) > width else line}")
    return [line.rstrip() for line in lines]
