"""pipeline: declarative, resumable batch runs against queue-style generative-media APIs."""

__version__ = "0.1.0"
