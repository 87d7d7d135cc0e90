"""The mesh on one machine: the embedded broker, every service as a process, chain following."""
