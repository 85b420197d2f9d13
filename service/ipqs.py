"""An IPQualityScore Device Fingerprint result (fields per IPQS's documentation, seed 004).

IPQS adds fields over time and echoes the account's custom tracking variables (``userID``
and the like) next to its own; unknown fields are skipped. ``fraud_score`` (the name in
IPQS's IP reputation results) is read when ``fraud_chance`` is absent, on the same 0-100 scale.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
ShortText = Annotated[str, msgspec.Meta(max_length=512)]


class IpqsResult(msgspec.Struct, frozen=True, kw_only=True):
    request_id: RequestId
    success: bool = True
    message: str | None = None
    device_id: ShortText | None = None
    guid: ShortText | None = None
    guid_confidence: Percent | None = None
    fraud_chance: Percent | None = None
    fraud_score: Percent | None = None
    proxy: bool | None = None
    vpn: bool | None = None
    tor: bool | None = None
    recent_abuse: bool | None = None
    bot_status: bool | None = None
    mobile: bool | None = None
    unique: bool | None = None
    isp: str | None = msgspec.field(default=None, name="ISP")
    country: str | None = None
    country_code: str | None = None
    reasons: list[str] | None = None
    # Unix seconds, up to the end of year 9999.
    time: Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799)] | None = None
    ip_address: ShortText | None = None
    # Custom tracking variables, as a website would name a user id or email in IPQS.
    user_id_var: ShortText | None = msgspec.field(default=None, name="userID")
    user_id: ShortText | None = None
    email: ShortText | None = None
