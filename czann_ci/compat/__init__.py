"""The czmodel 3.0.1 Python API, kept so that training scripts switch by changing an import.

``czann_ci.convert``, ``czann_ci.model_metadata``, ``czann_ci.legacy_model_metadata`` and
``czann_ci.transforms`` re-export these modules under the names czmodel used. They are thin facades
over the plan/pipeline (``czann_ci.pipeline.convert_model``); no conversion logic lives here.
"""
