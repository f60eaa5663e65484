"""Level 3 - automated model deployment."""
