"""The core room of the window (see docs/ARCHITECTURE.md)."""
