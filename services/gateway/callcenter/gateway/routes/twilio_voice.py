"""Twilio voice webhooks (/twilio/voice, /twilio/status) (issue 5)."""

from fastapi import APIRouter

router = APIRouter()
