"""czann-ci: convert, validate and publish ZEISS ZEN .czann models."""

__version__ = "0.1.0"
