"""`level2` (the console script) and `python -m level2`: the CLI of ``level2.cli``, except that a stage command
goes to the warm process when `level2 repro` runs one (``taxi.warm_stages``: the stages' imports done once)."""

from taxi.warm_stages import run_command


def main() -> None:
    run_command("level2.cli:app")


if __name__ == "__main__":
    main()
