"""Training, ONNX export and evaluation of hwotp's models. torch lives only here
(evaluation needs only numpy and onnxruntime)."""
