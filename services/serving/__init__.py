"""Running built bentos: a local ``bentoml serve`` process with readiness checks."""
