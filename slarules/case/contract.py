"""The case contract's vocabulary in plain Python: allowed values, patterns, limits.

The case's fields, and which of these values each takes, are in fields.py; every
model of a case (Pydantic, msgspec, Polars, Arrow) is built from that table.
"""
from __future__ import annotations

from .. import money

DEFAULT_TIMEZONE = "Asia/Shanghai"

PRODUCTS = ("taobao", "standard")
SCAN_TYPES = ("collect", "dispatch", "arrival", "signed")
SIGNED_BY = ("recipient", "proxy", "locker", "station", "other", "courier")   # courier: he confirmed receipt himself
HUB_FINDS = ("prohibited", "contaminating")
COMPLAINT_KINDS = ("query", "complaint")
CHANNELS = ("phone", "online", "ticket")
COMPLAINT_ISSUES = ("delay", "pressure_marks", "lost", "rude_courier", "insult", "physical_conflict",
                    "overcharge", "damage", "contents_short")
REFERENCE_SOURCES = ("arrival", "dispatch")     # which scan gave TB-1's reference arrival
ROUTES = ("same_city", "intra_province", "inter_province")     # NATIONAL.md NR-4: the service time limit's route

# How a Chinese (zh) message shows each value above: a person reading Chinese sees words,
# not codes. English keeps the codes; JSON always carries the codes. One table for all the
# value sets (a value means the same wherever it appears); a test requires every value here.
VALUE_LABELS_ZH = {
    "taobao": "淘宝件", "standard": "标准件",
    "collect": "揽收", "dispatch": "发件", "arrival": "到件", "signed": "签收",
    "recipient": "收件人本人", "proxy": "代签人", "locker": "快递柜", "station": "代收点", "other": "其他人", "courier": "快递员代签",
    "prohibited": "禁寄", "contaminating": "污染性",
    "query": "查询", "complaint": "投诉",
    "phone": "电话", "online": "在线", "ticket": "工单",
    "delay": "延误", "pressure_marks": "压痕", "lost": "遗失", "rude_courier": "快递员态度恶劣",
    "insult": "辱骂客户", "physical_conflict": "肢体冲突", "overcharge": "多收费", "damage": "破损",
    "contents_short": "内件短少",
    "same_city": "同城", "intra_province": "省内异地", "inter_province": "省际",
}

WAYBILL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
STATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
CODE_MAX_LENGTH = 64                 # waybills and station codes
MAX_SCANS = 1000                     # the default limit (limits.Limits.scans); a user may raise it
MAX_ISSUES = 32
DELAY_MINUTES_MAX = 10_000_000
RINGS_MAX = 1000
TEXT_MAX_LENGTH = 64                 # a timestamp or zone name as written; codes have CODE_MAX_LENGTH
# How a timestamp is read (its grammar, years and zones): instants.py.

# Decimal fields: (greater than, or at least, this; at most; decimal places; total digits)
MONEY = {"ge": 0, "max_digits": money.CASE_FIELD.whole_digits + money.PLACES, "decimal_places": money.PLACES}
LENGTH = {"gt": 0, "le": 10000, "decimal_places": 2}
WEIGHT = {"gt": 0, "le": 100000, "decimal_places": 3}
MINUTES = {"ge": 0, "le": 100000, "decimal_places": 2}     # complaint.handling_minutes
