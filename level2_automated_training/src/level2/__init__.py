"""Level 2 - automated training."""
