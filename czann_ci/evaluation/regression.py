"""Regression metrics (MAE, RMSE, PSNR, SSIM) of one image with scikit-image, and their mean over images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from czann_ci.errors import ImageError
from czann_ci.evaluation.rates import difference, mean_defined

SSIM_WINDOW = 7  # scikit-image's default window (7 x 7 pixels)


@dataclass(frozen=True)
class RegressionMetrics:
    """MAE and RMSE in the output's units, PSNR in dB (None when the two images are equal: infinite),
    SSIM in [-1, 1]. The score is SSIM, clipped at 0 so that it lies in [0, 1]."""

    mae: float
    rmse: float
    psnr: float | None
    ssim: float

    @property
    def score(self) -> float:
        return max(0.0, self.ssim)

    def as_dict(self) -> dict[str, Any]:
        return {"overall": {item.name: getattr(self, item.name) for item in fields(self)}}

    def change_from(self, old: RegressionMetrics) -> dict[str, Any]:
        return {
            "overall": {
                item.name: difference(getattr(self, item.name), getattr(old, item.name))
                for item in fields(self)
            }
        }


def regression_metrics(reference: np.ndarray, predicted: np.ndarray, *, file: Path) -> RegressionMetrics:
    """Metrics of one (H, W, C) float image against its reference. PSNR's and SSIM's data range is the
    reference's own range (max - min; 1 for a constant reference)."""
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

    if min(reference.shape[:2]) < SSIM_WINDOW:
        raise ImageError(
            f"{reference.shape[1]}x{reference.shape[0]} pixels is smaller than SSIM's "
            f"{SSIM_WINDOW}x{SSIM_WINDOW} window",
            file=str(file),
            field="shape",
        )
    reference = reference.astype(np.float64, copy=False)
    predicted = predicted.astype(np.float64, copy=False)
    span = float(reference.max() - reference.min()) or 1.0
    mse = float(mean_squared_error(reference, predicted))
    psnr = float(peak_signal_noise_ratio(reference, predicted, data_range=span)) if mse > 0 else None
    ssim = float(structural_similarity(reference, predicted, data_range=span, channel_axis=-1))
    return RegressionMetrics(
        mae=float(np.mean(np.abs(reference - predicted))), rmse=math.sqrt(mse), psnr=psnr, ssim=ssim
    )


def mean_regression(items: Sequence[RegressionMetrics]) -> RegressionMetrics:
    """Each metric's mean over the images (PSNR over the images where it is finite; None when none is)."""
    return RegressionMetrics(
        mae=float(np.mean([item.mae for item in items])),
        rmse=float(np.mean([item.rmse for item in items])),
        psnr=mean_defined(item.psnr for item in items),
        ssim=float(np.mean([item.ssim for item in items])),
    )
