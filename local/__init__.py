"""Run hwotp on one machine: a local redis-server and the four services (make run / up / down, tests)."""
