"""Middleware that teams keep when they replace the sample workload. Never imports `functions/`."""
