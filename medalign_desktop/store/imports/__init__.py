"""Importing files into the store: one shared driver (base), one module per kind of record, the readers."""
