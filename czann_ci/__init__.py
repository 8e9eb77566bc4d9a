"""czann-ci: convert, validate and publish ZEISS ZEN .czann models."""

__version__ = "1.0.0"
