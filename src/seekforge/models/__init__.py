"""Model registry and built-in models: ``mlp`` (tabular), ``cnn`` (image), ``transformer`` (text).

Third-party models register a :class:`ModelConfig` subclass through the ``seekforge.models`` entry-point
group; :func:`seekforge.testing.check_model_plugin` is the contract they must pass.
"""

from seekforge.models._cnn import CNNConfig
from seekforge.models._mlp import MLPConfig
from seekforge.models._transformer import TransformerConfig
from seekforge.models.config import MODELS, ModelConfig, ModelIO

__all__ = ["MODELS", "CNNConfig", "MLPConfig", "ModelConfig", "ModelIO", "TransformerConfig"]

from seekforge.models._infer import collate, infer, num_rows

__all__ += ["collate", "infer", "num_rows"]
