"""The export room of the window (see docs/ARCHITECTURE.md)."""
