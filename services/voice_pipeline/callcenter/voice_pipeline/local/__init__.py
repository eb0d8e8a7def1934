"""Speech services that run inside the voice pipeline, with no vendor key."""
