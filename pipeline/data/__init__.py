"""Data access: the source database, the snapshot dataset, atomic storage."""
