"""`level2` (the console script) and `python -m level2`: the CLI of ``level2.cli``, except that a stage command
goes to the warm process when `level2 repro` runs one (``taxi.warm_stages``: the stages' imports done once)."""

import sys

from taxi.warm_stages import run_command


def main() -> int | None:
    return run_command("level2.cli:app")


if __name__ == "__main__":
    sys.exit(main())
