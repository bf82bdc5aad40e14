"""The history room of the window (see docs/ARCHITECTURE.md)."""
