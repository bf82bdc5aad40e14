"""The train room of the window (see docs/ARCHITECTURE.md)."""
