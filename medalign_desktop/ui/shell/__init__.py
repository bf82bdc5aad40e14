"""The shell room of the window (see docs/ARCHITECTURE.md)."""
