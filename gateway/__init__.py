"""The public API of hwotp: orchestrates recognizer, verifier and challenge services, fails closed."""
