"""Reference data every service reads: the hierarchy, the reporting units and their types."""
