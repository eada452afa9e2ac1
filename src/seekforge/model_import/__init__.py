"""Models made elsewhere, brought into seekforge: first, what a model file is and what can run it here
(:func:`inspect_onnx`: opset, inputs and outputs with their dynamic axes, operators, shape inference, and
whether onnxruntime and OpenVINO run each operator on this machine), read before anything runs it.

Example:
    >>> report = inspect_onnx("resnet.onnx")
    >>> report.runs_here, report.openvino["unsupported"]
"""

from seekforge.model_import._hf import HfFolder, read_folder
from seekforge.model_import._onnx import OnnxReport, TensorSpec, inspect_onnx
from seekforge.model_import._package import ImportResult, as_onnx, import_onnx, load_spec
from seekforge.model_import._pt2 import pt2_to_onnx
from seekforge.model_import.config import GraphBinding, ImportSpec

__all__ = [
    "GraphBinding",
    "HfFolder",
    "ImportResult",
    "ImportSpec",
    "OnnxReport",
    "TensorSpec",
    "as_onnx",
    "import_onnx",
    "inspect_onnx",
    "load_spec",
    "pt2_to_onnx",
    "read_folder",
]
