"""A convolutional network for one image input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from seekforge.models.config import MODELS, ModelConfig, ModelIO

if TYPE_CHECKING:
    from seekforge.data.config import FeaturesConfig


@MODELS.register("cnn")
class CNNConfig(ModelConfig):
    """Blocks of conv -> batch norm -> activation (x2), each followed by 2x2 max pooling while the image
    is at least 4 pixels on a side; then global average pooling, dropout and a linear head."""

    type: Literal["cnn"] = "cnn"
    channels: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = [32, 64]
    kernel_size: Literal[3, 5, 7] = 3
    convs_per_block: Annotated[int, Field(ge=1, le=4)] = 2
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    #: Output channels of each convolution, in order, when they differ from ``channels`` (a pruned model).
    widths: list[Annotated[int, Field(ge=1)]] | None = None

    @model_validator(mode="after")
    def _widths_fit(self) -> CNNConfig:
        convs = len(self.channels) * self.convs_per_block
        if self.widths is not None and len(self.widths) != convs:
            raise ValueError(
                f"widths lists {len(self.widths)} convolutions, but channels x convs_per_block makes {convs}"
            )
        return self

    def check_features(self, features: FeaturesConfig) -> list[str]:
        images = features.of_type("image")
        if len(images) != 1 or len(features.inputs) != 1:
            got = ", ".join(f"{f.name} ({f.type})" for f in features.inputs)
            return [f"model type 'cnn' takes exactly one image input, got {got}"]
        return []

    def build(self, io: ModelIO, *, pretrained: bool = True) -> nn.Module:
        return CNN(self, io)

    def conv_widths(self) -> list[int]:
        """Output channels of each convolution, in order."""
        return self.widths or [c for c in self.channels for _ in range(self.convs_per_block)]

    def unprunable(self, model: nn.Module) -> list[nn.Module]:
        assert isinstance(model, CNN)
        return [model.head]

    def pruned(self, model: nn.Module) -> CNNConfig:
        assert isinstance(model, CNN)
        widths = [layer.out_channels for layer in model.features if isinstance(layer, nn.Conv2d)]
        return self.model_validate({**self.model_dump(), "widths": widths})


class CNN(nn.Module):
    def __init__(self, config: CNNConfig, io: ModelIO) -> None:
        super().__init__()
        assert io.image_shape is not None, "a cnn needs an image input"
        in_ch, height, width = io.image_shape
        layers: list[nn.Module] = []
        widths = iter(config.conv_widths())
        for _ in config.channels:
            for _ in range(config.convs_per_block):
                out_ch = next(widths)
                layers += [
                    nn.Conv2d(in_ch, out_ch, config.kernel_size, padding=config.kernel_size // 2, bias=False),
                    nn.BatchNorm2d(out_ch),
                    nn.ReLU(inplace=True),
                ]
                in_ch = out_ch
            if min(height, width) >= 4:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(in_ch, io.output_dim)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.pool(self.features(batch["image"])).flatten(1)
        return self.head(self.dropout(x))
