"""A small 3D U-Net that fills gap voxels of a log-scaled patch, mask as second channel."""

from __future__ import annotations

import torch
from torch import nn

from .._errors import ConfigurationError


def _conv(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.1, inplace=True),
    )


class DilatedBlock(nn.Module):
    """Parallel dilated 3x3x3 convolutions (dilations 1, 2, 4), concatenated then mixed.

    Sees context up to 4 voxels away at full resolution, so a 6-12 px gap is bridged in
    the first block (the thesis' best encoder design).
    """

    def __init__(self, c_in: int, c_out: int, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        branch = max(4, c_out // 2)
        self.branches = nn.ModuleList(_conv(c_in, branch, dilation=d) for d in dilations)
        self.mix = _conv(branch * len(dilations), c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (B, c_in, D, H, W)."""
        return self.mix(torch.cat([b(x) for b in self.branches], dim=1))


def _extra(channels: int, blocks: int) -> list[nn.Sequential]:
    return [_conv(channels, channels) for _ in range(blocks)]


class GapUNet(nn.Module):
    """3D U-Net predicting a residual on top of a linear fill, only inside the gap.

    Parameters
    ----------
    base_channels : int
        Channels at full resolution; doubled at each of the two coarser levels.
    blocks : int
        Extra 3x3x3 convolutions at each of the coarser levels (encoder, bottom and
        decoder at 1/2 and 1/4 resolution): a deeper model at little cost, since those
        levels hold 1/8 and 1/64 of the voxels. 0 is the shipped architecture (its
        checkpoints hold no ``blocks`` key).

    Notes
    -----
    Input ``(B, 2, D, H, W)``: channel 0 is the normalised log intensity with gap voxels
    pre-filled by linear interpolation (:func:`bcdi_online.model.normalise`), channel 1
    the gap mask (1 = gap). Output ``(B, 1, D, H, W)``: channel 0 of the input plus a
    learnt correction on gap voxels; measured voxels pass through unchanged. D, H, W must
    be multiples of :attr:`size_multiple`.
    """

    size_multiple = 4

    def __init__(self, base_channels: int = 16, blocks: int = 0) -> None:
        super().__init__()
        if base_channels < 1 or blocks < 0:
            raise ConfigurationError(
                f"base_channels {base_channels} must be >= 1, blocks {blocks} >= 0"
            )
        c = base_channels
        self.config: dict[str, int] = {"base_channels": base_channels}
        if blocks:
            self.config["blocks"] = blocks
        self.enc0 = DilatedBlock(2, c)
        self.enc1 = nn.Sequential(
            _conv(c, 2 * c, stride=2), _conv(2 * c, 2 * c), *_extra(2 * c, blocks)
        )
        self.bottom = nn.Sequential(
            _conv(2 * c, 4 * c, stride=2),
            _conv(4 * c, 4 * c, dilation=2),
            _conv(4 * c, 4 * c),
            *_extra(4 * c, blocks),
        )
        self.up1 = nn.ConvTranspose3d(4 * c, 2 * c, 2, stride=2)
        # unpacked, so that blocks=0 keeps the shipped checkpoints' parameter names
        self.dec1 = nn.Sequential(*_conv(4 * c, 2 * c), *_extra(2 * c, blocks))
        self.up0 = nn.ConvTranspose3d(2 * c, c, 2, stride=2)
        self.dec0 = _conv(2 * c, c)
        self.head = nn.Conv3d(c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fill the gap of ``x`` (B, 2, D, H, W); return (B, 1, D, H, W)."""
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        b = self.bottom(e1)
        d1 = self.dec1(torch.cat([self.up1(b), e1], dim=1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], dim=1))
        gap = x[:, 1:2]
        return x[:, 0:1] + gap * self.head(d0)
