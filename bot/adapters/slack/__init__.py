"""The Slack adapter (see adapter.py)."""
