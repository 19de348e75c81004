"""The Discord adapter (see adapter.py)."""
