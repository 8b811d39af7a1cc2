"""harness: safety and value evaluation of language models."""

__version__ = "0.2.0"
