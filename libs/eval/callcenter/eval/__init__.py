"""Scenario evaluation: scripted customers run through the real channels, scored by end state."""
