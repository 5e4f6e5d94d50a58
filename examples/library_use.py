"""Adjudicate a case in-process, as a service would. Run: python examples/library_use.py"""
from slarules import CaseError, Engine

engine = Engine.default()          # compile the shipped packs once; share across threads

case = {
    "waybill": "BX7700123456",
    "product": "taobao",
    "as_of": "2026-05-03T09:00:00+08:00",
    "stations": {"sending": "HHHT-01", "delivering": "BT-03"},
    "scans": [
        {"type": "arrival", "station": "BT-03", "at": "2026-05-02T11:40:00+08:00"},
        {"type": "signed", "station": "BT-03", "at": "2026-05-02T17:20:00+08:00"},
    ],
}
verdict = engine.adjudicate(case, lang="en")
for finding in verdict.findings:
    print(finding.clause, finding.party, finding.station, finding.message)
print(verdict.to_json())

try:
    engine.adjudicate({"waybill": "X1", "parcel": {"weight_kg": -1}})
except CaseError as err:           # every error carries file, line, column and field
    print("rejected:", err.field, "-", err)
