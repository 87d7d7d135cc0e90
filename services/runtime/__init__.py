"""What the four services share: broker wiring, the stage pipeline, HTTP endpoints, topics."""
