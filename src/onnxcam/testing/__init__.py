"""Tools for testing onnxcam itself: a seeded fuzzer of models, inputs, methods and options
(`python -m onnxcam.testing.fuzz --cases N`)."""
