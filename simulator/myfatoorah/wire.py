"""MyFatoorah's wire formats: JSON with exact decimals, money texts and date texts."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

KUWAIT = ZoneInfo("Asia/Kuwait")
THOUSANDTH = Decimal("0.001")


class MalformedJSON(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not a JSON number")


def loads(raw: bytes) -> Any:
    """Parse a request body; numbers with a fraction become `Decimal`, never float."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedJSON(str(exc)) from None


def dumps(value: Any) -> bytes:
    """JSON where a `Decimal` is written as the number it is (`15.000` stays `15.000`)."""
    return _encode(value).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def money(value: Decimal) -> Decimal:
    """An amount as the API's numbers show it: three decimals (15 -> 15.000)."""
    return value.quantize(THOUSANDTH)


def money_text(value: Decimal) -> str:
    """`12345` -> `"12,345.000"` (InvoiceDisplayValue, TransationValue)."""
    return f"{money(value):,.3f}"


def plain_text(value: Decimal) -> str:
    """`Decimal("2.500")` -> `"2.5"`, as the webhooks' amount strings are written."""
    return format(value.normalize(), "f")


def kuwait(moment: datetime) -> datetime:
    return moment.astimezone(KUWAIT)


def local_iso(moment: datetime) -> str:
    """GetPaymentStatus dates: Kuwait wall time, no offset: `2021-07-28T12:38:56.233`."""
    return kuwait(moment).replace(tzinfo=None).isoformat(timespec="milliseconds")


def long_date(moment: datetime) -> str:
    local = kuwait(moment)
    return f"{local:%B} {local.day}, {local.year}"  # "July 31, 2021"


def clock_time(moment: datetime) -> str:
    return f"{kuwait(moment):%H:%M:%S}"


def compact(moment: datetime) -> str:
    """Webhook v1 times: `ddMMyyyyHHmmss`, Kuwait time."""
    return f"{kuwait(moment):%d%m%Y%H%M%S}"


def utc_text(moment: datetime) -> str:
    """Webhook v2 times: UTC with seven fractional digits, `2026-01-04T08:15:00.9500000Z`."""
    utc = moment.astimezone(ZoneInfo("UTC"))
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0Z"
