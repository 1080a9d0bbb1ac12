"""Load test and benchmark of hwotp (make loadtest, make bench)."""
