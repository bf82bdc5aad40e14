"""Exporting the store's data as training files (preference pairs, SFT records) with their manifests."""
