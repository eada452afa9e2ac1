"""Model registry and built-in models: ``mlp`` (tabular), ``cnn`` (image), ``transformer`` (text), ``fusion``
(any mix of them).

Third-party models register a :class:`ModelConfig` subclass through the ``seekforge.models`` entry-point
group; :func:`seekforge.testing.check_model_plugin` is the contract they must pass.
"""

from seekforge.models._cnn import CNNConfig
from seekforge.models._fusion import FusionConfig
from seekforge.models._mlp import MLPConfig
from seekforge.models._onnx_graph import OnnxGraph, OnnxGraphConfig
from seekforge.models._transformer import TransformerConfig, hf_transformers, resolve_pretrained
from seekforge.models.config import MODELS, ModelConfig, ModelIO, image_key, is_token_key, text_keys

__all__ = [
    "MODELS",
    "CNNConfig",
    "FusionConfig",
    "MLPConfig",
    "ModelConfig",
    "ModelIO",
    "OnnxGraph",
    "OnnxGraphConfig",
    "TransformerConfig",
    "hf_transformers",
    "image_key",
    "is_token_key",
    "resolve_pretrained",
    "text_keys",
]

from seekforge.models._adapter import (
    AdapterConfig,
    adaptable_layers,
    base_sha256,
    check_base,
    default_targets,
    peft_model,
    target_problems,
)
from seekforge.models._exits import (
    Departures,
    EarlyExitConfig,
    ExitPolicy,
    calibrate_model,
    exit_latency,
    infer_exits,
    point,
    through_all_layers,
)
from seekforge.models._infer import collate, for_backend, infer, num_rows
from seekforge.models._package import build_model, check_model_size, load_tensors, model_spec_of
from seekforge.models._quantized import (
    QUANT_FILE,
    Exported,
    check_qat_supported,
    convert,
    prepare_qat,
    quantized_model,
    split_state,
)

__all__ += [
    "AdapterConfig",
    "adaptable_layers",
    "base_sha256",
    "check_base",
    "default_targets",
    "peft_model",
    "target_problems",
]
__all__ += ["Departures", "EarlyExitConfig", "ExitPolicy", "calibrate_model", "exit_latency", "infer_exits"]
__all__ += ["point", "through_all_layers"]
__all__ += ["build_model", "check_model_size", "collate", "for_backend", "infer", "load_tensors", "model_spec_of"]
__all__ += ["num_rows"]
__all__ += ["QUANT_FILE", "Exported", "check_qat_supported", "convert", "prepare_qat", "quantized_model", "split_state"]
