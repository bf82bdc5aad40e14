"""The annotate room of the window (see docs/ARCHITECTURE.md)."""
