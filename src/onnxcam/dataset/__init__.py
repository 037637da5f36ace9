"""Dataset-scale explanations: every input of a folder, glob or list file, on one machine or on
a Ray cluster, resumable after a crash."""

from onnxcam.dataset.manifest import Row, read_manifest
from onnxcam.dataset.run import Summary, explain_dataset
from onnxcam.dataset.worker import Job

__all__ = ["Job", "Row", "Summary", "explain_dataset", "read_manifest"]
