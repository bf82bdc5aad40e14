"""The database schema, one module per version (v1 is the full first schema), and the migrations between them."""
