"""The models room of the window (see docs/ARCHITECTURE.md)."""
