"""czmodel-compatible pre/post-processing layers (Keras 3): ``from czann_ci.transforms import TransposeChannels``."""

from czann_ci.sources.tensorflow.keras_layers import (
    PerImageStandardization,
    Scale,
    Shift,
    SigmoidToSoftmaxScores,
    TransposeChannels,
)

__all__ = ["PerImageStandardization", "Scale", "Shift", "SigmoidToSoftmaxScores", "TransposeChannels"]
