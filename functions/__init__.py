"""Blueprints of the sample clinical workload: thin handlers over `shared/`."""
