"""`level3` (the console script) and `python -m level3`: the CLI of ``level3.cli``, except that a stage command
goes to the warm process when the story runs one (``taxi.warm_stages``: the stages' imports done once)."""

import sys

from taxi.warm_stages import run_command


def main() -> int | None:
    return run_command("level3.cli:app")


if __name__ == "__main__":
    sys.exit(main())
