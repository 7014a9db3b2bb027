"""All tables, imported here so `Base.metadata` knows them."""

from schema.models.account import Account, Membership, User
from schema.models.api_key import ApiKey
from schema.models.audit import AuditEntry
from schema.models.billing import BillingEvent, Invoice, Order, PaymentNotice, TopUpPack
from schema.models.catalog import CatalogModel, Plan, PlanModel, Price
from schema.models.cloud import AdminAlert, CloudBudgetDay
from schema.models.ledger import CreditEntry
from schema.models.usage import UsageHourly, UsageHourlyTotal, UsageRecord

__all__ = [
    "Account",
    "AdminAlert",
    "ApiKey",
    "AuditEntry",
    "BillingEvent",
    "CatalogModel",
    "CloudBudgetDay",
    "CreditEntry",
    "Invoice",
    "Membership",
    "Order",
    "PaymentNotice",
    "Plan",
    "PlanModel",
    "Price",
    "TopUpPack",
    "UsageHourly",
    "UsageHourlyTotal",
    "UsageRecord",
    "User",
]
