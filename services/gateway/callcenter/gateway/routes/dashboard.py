"""Supervisor dashboard and the embeddable chat widget (issue 9)."""

from fastapi import APIRouter

router = APIRouter()
