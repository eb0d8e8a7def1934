"""Summarising a conversation: an LLM (directly or through litellm), or the offline extractive fallback."""

from callcenter.post_call.summary.base import CallSummary, Summarizer, TranscriptTurn
from callcenter.post_call.summary.llm import LLMSummarizer
from callcenter.post_call.summary.offline import OfflineSummarizer

__all__ = ["CallSummary", "LLMSummarizer", "OfflineSummarizer", "Summarizer", "TranscriptTurn"]
