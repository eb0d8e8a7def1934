"""The agent inbox (issue 14): a named human agent takes a conversation over from the bot.

- :mod:`.agents`: agent accounts (created by the admin, one token each) and how requests prove one;
- :mod:`.state`: who owns a conversation (``bot`` -> ``waiting_for_agent`` -> ``agent`` -> ``bot`` or
  ``closed``), changed atomically in PostgreSQL and mirrored to Redis for the conversation service;
- :mod:`.delivery`: what reaches the customer (the widget's socket on any replica, or an SMS);
- :mod:`.routing`: the one call the chat socket and the SMS webhook make for each customer message;
- :mod:`.updates`: inbox changes fanned out to every replica's agent pages (Server-Sent Events);
- :mod:`.sweeper`: nobody came in time (or it is outside business hours): ticket and callback offer.
"""
