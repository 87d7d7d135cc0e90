"""The bridge from an MLflow model registry: registrations and aliases become ``ModelRegistered``,
and where each version serves is written back to MLflow."""
