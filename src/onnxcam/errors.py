"""Errors that onnxcam raises for bad input; each message names what was expected and what came."""


class OnnxcamError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class ModelError(OnnxcamError):
    """The ONNX file is missing, unreadable, truncated or not a classifier onnxcam can explain."""


class LayerError(OnnxcamError):
    """The requested target layer does not exist or has no spatial axes."""


class InputError(OnnxcamError):
    """An input has the wrong rank, size or dtype, holds NaN/Inf, or cannot be read."""


class TargetError(OnnxcamError):
    """The class to explain is out of range or malformed."""


class ProviderError(OnnxcamError):
    """The requested ONNX Runtime execution provider is not available or fell back."""


class OutputError(OnnxcamError):
    """Results cannot be written where they were asked to go."""


class ExportError(OnnxcamError):
    """A framework model could not be exported, or a requested layer was not found in it."""


class ArgumentError(OnnxcamError, ValueError):
    """An argument or option that is of the wrong kind or out of range."""
