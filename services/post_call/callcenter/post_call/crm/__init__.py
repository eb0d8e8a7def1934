"""CRM adapters: built-in PostgreSQL tables, or HubSpot notes over HTTP."""

from callcenter.post_call.crm.base import CrmActivity, CrmAdapter
from callcenter.post_call.crm.builtin import BuiltinCrm
from callcenter.post_call.crm.hubspot import HubSpotCrm

__all__ = ["BuiltinCrm", "CrmActivity", "CrmAdapter", "HubSpotCrm"]
