"""All tables, imported here so `Base.metadata` knows them."""

from schema.models.account import Account, Membership, User
from schema.models.api_key import ApiKey
from schema.models.audit import AuditEntry
from schema.models.catalog import CatalogModel, Plan, PlanModel, Price
from schema.models.cloud import AdminAlert, CloudBudgetDay
from schema.models.ledger import CreditEntry
from schema.models.usage import UsageHourly, UsageHourlyTotal, UsageRecord

__all__ = [
    "Account",
    "AdminAlert",
    "ApiKey",
    "AuditEntry",
    "CatalogModel",
    "CloudBudgetDay",
    "CreditEntry",
    "Membership",
    "Plan",
    "PlanModel",
    "Price",
    "UsageHourly",
    "UsageHourlyTotal",
    "UsageRecord",
    "User",
]
