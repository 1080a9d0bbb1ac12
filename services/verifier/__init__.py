"""Writer verification service: ONNX embeddings, templates in Redis, calibrated scores."""
