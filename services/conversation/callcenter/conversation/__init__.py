"""The conversation engine behind ``conversation.turn``.

It keeps the session in Redis, runs the LLM tool loop through litellm with fallbacks, and answers
with the deterministic offline engine when no model is configured or every model fails.
"""
