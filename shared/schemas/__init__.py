"""Minimum-necessary schemas. `MODELS` lists every stored or transmitted model (inventory, tests)."""
