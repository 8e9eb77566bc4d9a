"""The one renderer: results and validation summaries as terminal text, JSON, Markdown and annotations.

Checks and the pipeline produce data; only this package turns it into words, so the CLI and the CI step
describe the same state with the same text.
"""
