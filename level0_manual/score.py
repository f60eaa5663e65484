"""Score trips with the model the data scientist handed over: python score.py --input trips.csv

The logic lives in src/level0/score.py (importable, tested); this is the script the app team runs.
"""

import sys

from level0.score import main

if __name__ == "__main__":
    sys.exit(main())
