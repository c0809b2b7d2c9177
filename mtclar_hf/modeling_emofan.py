"""EmoFAN: our plain-PyTorch implementation of the EmoNet encoder (Toisoul et al., Nature Machine Intelligence 2021).

EmoNet stacks two FAN hourglasses (a 68-point face-landmark network), uses the sum of the last 68 heatmaps as an
attention mask over the hourglass features, and runs an "emotion branch" (a 1x1 conv, four ConvBlock + max-pool
stages, global average pooling) that ends in a 256-d vector. MT-CLAR replaces EmoNet's final MLP (`emo_fc_2`) by
the identity and uses that 256-d vector as the image embedding; this module is exactly that.

The parameter and buffer names are EmoNet's own (`conv1`, `m0.b1_4.bn1.weight`, `emo_net_2.6.conv3.weight`, ...)
minus `emo_fc_2.*`, so `mtclar convert-emonet` copies `emonet_8.pth` in key for key (see
`convert_emonet_checkpoint.py`). Two of EmoNet's quirks are kept on purpose because the pretrained weights rely on
them: every norm layer is a BatchNorm2d with running statistics (EmoNet rebinds `nn.InstanceNorm2d` to
`nn.BatchNorm2d` at import; we simply use `nn.BatchNorm2d` and never touch `torch.nn`), and the attention mask is
the raw, unnormalised heatmap sum.

This file is copied next to a saved model as remote code, so it imports only torch; the config is read duck-typed.
"""

import torch
from torch import nn
from torch.nn import functional as F

NUM_LANDMARKS = 68
HOURGLASS_CHANNELS = 256
HOURGLASS_DEPTH = 4
EMBEDDING_SIZE = 256

# Submodules of EmoNet's emotion branch; every other child is the FAN landmark trunk, which EmoNet freezes.
EMOTION_BRANCH_MODULES = ("conv1x1_input_emo_2", "emo_net_2")


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


class EmoFANConvBlock(nn.Module):
    """FAN's pre-activation residual block: three [BN -> ReLU -> 3x3 conv] whose outputs are concatenated.

    The convs produce out/2, out/4 and out/4 channels; their concatenation (out channels) is added to the residual,
    which is the identity or, when the width changes, BN -> ReLU -> 1x1 conv (`downsample.0` / `downsample.2`).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = conv3x3(quarter, quarter)
        if in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_channels),
                nn.ReLU(),
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=False),
            )
        else:
            self.downsample = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(hidden)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = hidden if self.downsample is None else self.downsample(hidden)
        return torch.cat((out1, out2, out3), dim=1) + residual


class EmoFANHourGlass(nn.Module):
    """FAN's recursive hourglass of 256-channel ConvBlocks.

    At level L: upper = b1_L(x); lower = b3_L(next(b2_L(maxpool2(x)))) where `next` is level L-1, or `b2_plus_1`
    at level 1; the result is upper + nearest-upsample(lower, x2). Blocks are registered in EmoNet's order
    (b1_4, b2_4, b1_3, ..., b2_plus_1, b3_1, ..., b3_4) so the state dict matches key for key.
    """

    def __init__(self, depth: int = HOURGLASS_DEPTH, channels: int = HOURGLASS_CHANNELS):
        super().__init__()
        self.depth = depth
        self._add_level(depth, channels)

    def _add_level(self, level: int, channels: int) -> None:
        self.add_module(f"b1_{level}", EmoFANConvBlock(channels, channels))
        self.add_module(f"b2_{level}", EmoFANConvBlock(channels, channels))
        if level > 1:
            self._add_level(level - 1, channels)
        else:
            self.add_module(f"b2_plus_{level}", EmoFANConvBlock(channels, channels))
        self.add_module(f"b3_{level}", EmoFANConvBlock(channels, channels))

    def _level_forward(self, level: int, hidden: torch.Tensor) -> torch.Tensor:
        upper = self._modules[f"b1_{level}"](hidden)
        lower = self._modules[f"b2_{level}"](F.max_pool2d(hidden, 2, stride=2))
        if level > 1:
            lower = self._level_forward(level - 1, lower)
        else:
            lower = self._modules[f"b2_plus_{level}"](lower)
        lower = self._modules[f"b3_{level}"](lower)
        return upper + F.interpolate(lower, scale_factor=2, mode="nearest")

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self._level_forward(self.depth, hidden)


class EmoFANEncoder(nn.Module):
    """EmoNet up to its 256-d pooled emotion feature (EmoNet with `emo_fc_2` replaced by the identity).

    Args:
        config: any object with (optional) attributes `emofan_num_modules` (stacked hourglasses, default 2),
            `emofan_n_blocks` (emotion ConvBlock + max-pool stages, default 4) and `emofan_attention` (heatmap
            attention, default True) -- an `MTCLARConfig` in practice. `None` gives EmoNet's defaults.

    Input: `pixel_values` `(batch, 3, H, W)`, RGB in [0, 1], no mean/std normalisation; EmoNet was trained on face
    crops resized to 256x256. H and W must be multiples of 64 (stride-4 stem, then four 2x poolings in the
    hourglass). Output: `(batch, 256)`.

    Deviation from EmoNet, on purpose: EmoNet ends with `AvgPool2d(4)`, which is a global average only for 256 px
    inputs (4x4 maps). We average globally, which is identical at 256 px and also works for other multiples of 64.
    """

    output_size = EMBEDDING_SIZE

    def __init__(self, config=None):
        super().__init__()
        self.num_modules = int(getattr(config, "emofan_num_modules", 2))
        self.n_blocks = int(getattr(config, "emofan_n_blocks", 4))
        self.attention = bool(getattr(config, "emofan_attention", True))
        if self.num_modules < 1 or self.n_blocks < 1:
            raise ValueError(f"emofan_num_modules and emofan_n_blocks must be >= 1, got {self.num_modules}, {self.n_blocks}")
        self.trunk_frozen = False
        self.keep_trunk_in_eval = False

        # FAN landmark trunk, registered in EmoNet's order (state dict order follows it).
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = EmoFANConvBlock(64, 128)
        self.conv3 = EmoFANConvBlock(128, 128)
        self.conv4 = EmoFANConvBlock(128, HOURGLASS_CHANNELS)
        for stack in range(self.num_modules):
            self.add_module(f"m{stack}", EmoFANHourGlass(HOURGLASS_DEPTH, HOURGLASS_CHANNELS))
            self.add_module(f"top_m_{stack}", EmoFANConvBlock(HOURGLASS_CHANNELS, HOURGLASS_CHANNELS))
            self.add_module(f"conv_last{stack}", nn.Conv2d(HOURGLASS_CHANNELS, HOURGLASS_CHANNELS, kernel_size=1))
            self.add_module(f"bn_end{stack}", nn.BatchNorm2d(HOURGLASS_CHANNELS))
            self.add_module(f"l{stack}", nn.Conv2d(HOURGLASS_CHANNELS, NUM_LANDMARKS, kernel_size=1))
            if stack < self.num_modules - 1:
                self.add_module(f"bl{stack}", nn.Conv2d(HOURGLASS_CHANNELS, HOURGLASS_CHANNELS, kernel_size=1))
                self.add_module(f"al{stack}", nn.Conv2d(NUM_LANDMARKS, HOURGLASS_CHANNELS, kernel_size=1))

        # Emotion branch: stem features + every stack's features (+ the heatmaps themselves without attention).
        in_features = HOURGLASS_CHANNELS * (self.num_modules + 1) + (0 if self.attention else NUM_LANDMARKS)
        self.conv1x1_input_emo_2 = nn.Conv2d(in_features, EMBEDDING_SIZE, kernel_size=1)
        stages = []
        for _ in range(self.n_blocks):
            stages += [EmoFANConvBlock(EMBEDDING_SIZE, EMBEDDING_SIZE), nn.MaxPool2d(2, 2)]
        self.emo_net_2 = nn.Sequential(*stages)

    # ----------------------------------------------------------------------------------------------- freezing
    def trunk_modules(self) -> list[nn.Module]:
        """The FAN landmark trunk: every child before the emotion branch (what EmoNet's constructor freezes)."""
        return [module for name, module in self.named_children() if name not in EMOTION_BRANCH_MODULES]

    def freeze_trunk(self, batchnorm_eval: bool = True) -> None:
        """Stop gradients into the landmark trunk, as EmoNet does; only the emotion branch trains.

        With `batchnorm_eval=True` (default) the trunk also stays in eval mode whenever the encoder is put in
        training mode, so its BatchNorms keep using and keeping their pretrained running statistics. EmoNet itself
        only sets `requires_grad=False`, so a plain `train()` there lets the frozen trunk's statistics drift with
        every training batch; we keep the trunk a fixed function, which is what "frozen" is meant to give.

        The freeze is re-applied on every `train()` / `eval()` call: transformers' `from_pretrained` replaces the
        parameters with new ones that require grad and then calls `eval()`, which would otherwise unfreeze the trunk.
        """
        self.trunk_frozen = True
        self.keep_trunk_in_eval = batchnorm_eval
        self._apply_trunk_freeze()

    def _apply_trunk_freeze(self) -> None:
        for module in self.trunk_modules():
            module.requires_grad_(False)
            if self.keep_trunk_in_eval:
                module.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.trunk_frozen:
            self._apply_trunk_freeze()
        return self

    # ------------------------------------------------------------------------------------------------ forward
    def check_input(self, pixel_values: torch.Tensor) -> None:
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"EmoFAN expects pixel_values of shape (batch, 3, H, W), got {tuple(pixel_values.shape)}")
        multiple = 4 * 2**HOURGLASS_DEPTH
        height, width = pixel_values.shape[-2:]
        if height % multiple or width % multiple:
            raise ValueError(f"EmoFAN needs H and W that are multiples of {multiple} (EmoNet uses 256), got {height}x{width}")
        if min(height, width) // 4 < 2**self.n_blocks:
            raise ValueError(f"EmoFAN with {self.n_blocks} emotion blocks needs inputs of at least {4 * 2**self.n_blocks} px")

    def stem(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """7x7/2 conv -> BN -> ReLU -> ConvBlock -> 2x max-pool -> two ConvBlocks: 256 channels at 1/4 resolution."""
        hidden = F.relu(self.bn1(self.conv1(pixel_values)))
        hidden = F.max_pool2d(self.conv2(hidden), 2, stride=2)
        return self.conv4(self.conv3(hidden))

    def stacked_hourglasses(self, stem_features: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run the stacked hourglasses; return each stack's feature for the emotion branch and the last heatmaps.

        As in EmoNet, the feature kept from an intermediate stack is its `bl` projection (the one fed back into the
        next stack's input), and from the last stack the ReLU output itself.
        """
        running_input = stem_features
        stack_features = []
        for stack in range(self.num_modules):
            hidden = self._modules[f"top_m_{stack}"](self._modules[f"m{stack}"](running_input))
            hidden = F.relu(self._modules[f"bn_end{stack}"](self._modules[f"conv_last{stack}"](hidden)))
            heatmaps = self._modules[f"l{stack}"](hidden)
            if stack < self.num_modules - 1:
                hidden = self._modules[f"bl{stack}"](hidden)
                running_input = running_input + hidden + self._modules[f"al{stack}"](heatmaps)
            stack_features.append(hidden)
        return stack_features, heatmaps

    def emotion_input(
        self, stem_features: torch.Tensor, stack_features: list[torch.Tensor], heatmaps: torch.Tensor
    ) -> torch.Tensor:
        """Stem features followed by the stack features, the latter weighted by the summed heatmaps (attention).

        The mask is the raw sum over the 68 heatmaps (no sigmoid or normalisation), exactly as EmoNet; without
        attention the heatmaps are appended as extra channels instead.
        """
        landmark_features = torch.cat(stack_features, dim=1)
        if self.attention:
            mask = heatmaps.sum(dim=1, keepdim=True)
            return torch.cat((stem_features, landmark_features * mask), dim=1)
        return torch.cat((stem_features, landmark_features, heatmaps), dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(batch, 3, H, W)` RGB in [0, 1] -> `(batch, 256)` EmoNet emotion feature."""
        self.check_input(pixel_values)
        stem_features = self.stem(pixel_values)
        stack_features, heatmaps = self.stacked_hourglasses(stem_features)
        hidden = self.conv1x1_input_emo_2(self.emotion_input(stem_features, stack_features, heatmaps))
        hidden = self.emo_net_2(hidden)
        return hidden.mean(dim=(2, 3))


__all__ = ["EmoFANConvBlock", "EmoFANEncoder", "EmoFANHourGlass", "EMOTION_BRANCH_MODULES"]
