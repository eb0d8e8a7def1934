"""Ticket adapters: the built-in tickets table (shared with the tools service's create_ticket)."""

from callcenter.post_call.tickets.base import NewTicket, Opened, TicketAdapter
from callcenter.post_call.tickets.builtin import BuiltinTickets

__all__ = ["BuiltinTickets", "NewTicket", "Opened", "TicketAdapter"]
