"""Active probing around the probe kinds: tasks, scheduling, confirmation, re-checks, on demand."""
