"""Data plane: run directories (Parquet + DuckDB + manifest), reports; later bus, store, quality."""
