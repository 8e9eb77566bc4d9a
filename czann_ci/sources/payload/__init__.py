"""The SavedModel payload of spec 1.0.0, both ways: packed on request (source), read back from an
archive that holds one (archive_source, czmodel 5.x's fallback), and the zipped folder itself (savedmodel)."""
