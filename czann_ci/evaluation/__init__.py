"""A model's quality on the lab's own images (issue 23): images paired with label images, the model (and
the model it replaces) run as ZEN runs it, segmentation and regression metrics, one score in [0, 1].

``evaluate(model, pair_images(images, labels), baseline=...)`` gives an ``Evaluation``; its ``as_dict()``
is `czann evaluate --json` (docs/evaluation.schema.json), ``render.evaluation_table`` and
``render.evaluation_sheet`` draw it."""

from czann_ci.evaluation.pairing import ImagePair, pair_images
from czann_ci.evaluation.results import Evaluation, Scored
from czann_ci.evaluation.run import PlaneOptions, evaluate

__all__ = ["Evaluation", "ImagePair", "PlaneOptions", "Scored", "evaluate", "pair_images"]
