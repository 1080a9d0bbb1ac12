"""Digit recognition service: the ONNX CNN, one batched inference per request."""
