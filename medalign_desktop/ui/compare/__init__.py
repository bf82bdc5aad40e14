"""The compare room of the window (see docs/ARCHITECTURE.md)."""
