"""Read (and the few allowed write) queries over a service's tables, provided by their owner.

Every table has one owning service (its migrations create it). Another service never spells SQL
against it: it calls the owner's module here (``queries/<owner>.py``), so the owner can change its
schema and its queries in one place.
"""
