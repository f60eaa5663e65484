"""`level4` (the console script) and `python -m level4`: the CLI of ``level4.cli``, except that a stage command
goes to the warm process when the replay runs one (``taxi.warm_stages``: the stages' imports done once)."""

import sys

from taxi.warm_stages import run_command


def main() -> int | None:
    return run_command("level4.cli:app")


if __name__ == "__main__":
    sys.exit(main())
