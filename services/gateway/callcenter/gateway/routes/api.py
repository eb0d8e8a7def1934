"""REST API: calls, transcripts, summaries, tickets, dead letters (issue 7)."""

from fastapi import APIRouter

router = APIRouter()
