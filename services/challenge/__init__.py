"""Challenge service: random digit challenges in Redis, each claimed at most once."""
