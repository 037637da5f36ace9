"""ONNX and ONNX Runtime work; imports neither torch, keras nor tensorflow."""
