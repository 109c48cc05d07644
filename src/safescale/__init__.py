"""SaFE-Scale: how safety and accuracy of local clinical LLMs scale."""

__version__ = "0.1.0"
