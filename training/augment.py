"""Small random affine distortions of a batch (never flips: a flipped digit is another digit)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, rotate_deg: float, scale: float, shear: float, shift_px: float) -> torch.Tensor:
    n = x.shape[0]
    angle = (torch.rand(n) * 2 - 1) * math.radians(rotate_deg)
    zoom = 1 + (torch.rand(n) * 2 - 1) * scale
    sh = (torch.rand(n) * 2 - 1) * shear
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / 28.
    tx, ty = ((torch.rand(2, n) * 2 - 1) * shift_px * 2 / x.shape[-1])
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos, -sin + sh, tx], 1),
        torch.stack([sin, cos, ty], 1),
    ], 1)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
