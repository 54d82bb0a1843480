"""llmopt-exporter: Prometheus metrics for LLM auto-optimizer systems."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmopt-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
