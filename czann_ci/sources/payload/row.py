"""A .czann whose model is a zipped SavedModel (czmodel 5.x's fallback) as a source: its row. Spec 1.0.0's
explicit SavedModel payload (--savedmodel) is a way of packing, not a source (``sources.base``)."""

from __future__ import annotations

from czann_ci.sources.registry import SourceRow, register

register(
    SourceRow(
        format="archive",
        source="czann_ci.sources.payload.archive_source:ArchiveSavedModelSource",
        noun="a .czann with a SavedModel payload",
        plural="SavedModels",
        suffixes=(".czann",),  # legacy 3.0.0 files are not converted
        extra="tensorflow",
        extra_module="tensorflow",
        own_metadata="czann_ci.sources.payload.archive_source:own_metadata",
    )
)
