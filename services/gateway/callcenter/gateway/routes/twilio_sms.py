"""Twilio SMS webhook (/twilio/sms) (issue 6)."""

from fastapi import APIRouter

router = APIRouter()
