"""The verdict as a person reads it at a terminal (the JSON is for machines).

Codes the JSON carries (a finding's kind and severity, deadline names,
classifications) are shown by label: Chinese in zh, the code itself in en. A
name a pack of one's own adds and this table lacks is shown as it is.
"""
from __future__ import annotations

import unicodedata
from typing import Any

from ..packs.vocabulary import CLASSIFICATION_LABELS_ZH, DEADLINE_LABELS_ZH
from .assembly import PARTY_NAMES, Verdict

LABELS: dict[str, dict[str, Any]] = {     # a label, or a table of labels by code
    "zh": {"waybill": "运单", "as_of": "裁决时间", "packs": "规则包", "findings": "判定", "none": "无",
           "classifications": "分类", "level": "投诉等级", "deadlines": "时限", "fines": "罚款合计",
           "refunds": "退款合计", "compensations": "赔偿合计", "compensation": "赔偿", "missing": "缺少事实", "not_covered": "政策未覆盖", "fine": "罚款",
           "refund": "退款", "status": {"met": "已达成", "breached": "已违反", "open": "未到期/未完成"},
           "kind": {"liability": "责任", "fine": "罚款", "refund": "退款", "classification": "分类",
                    "breach": "超时", "procedure": "程序", "warning": "提醒", "compensation": "赔偿"},
           "severity": {"info": "提示", "warning": "警告", "error": "错误"},
           "deadline": DEADLINE_LABELS_ZH, "classification": CLASSIFICATION_LABELS_ZH},
    "en": {"waybill": "Waybill", "as_of": "as of", "packs": "Packs", "findings": "Findings", "none": "none",
           "classifications": "Classifications", "level": "Complaint level", "deadlines": "Deadlines",
           "fines": "Fines", "refunds": "Refunds", "compensations": "Compensation", "compensation": "compensation",
           "missing": "Missing facts", "not_covered": "Not covered",
           "fine": "fine", "refund": "refund", "status": {"met": "met", "breached": "breached", "open": "open"},
           "kind": {}, "severity": {}, "deadline": {}, "classification": {}},
}


def _pad(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns (a Chinese character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 0)


def render_text(v: Verdict, lang: str = "zh") -> str:
    L = LABELS[lang]
    out = [f"{L['waybill']} {v.waybill} · {L['as_of']} {v.as_of}",
           f"{L['packs']}: " + ", ".join(f"{p.name} {p.version}" for p in v.packs), ""]
    out.append(f"{L['findings']} ({len(v.findings)})")
    if not v.findings:
        out.append(f"  {L['none']}")
    for f in v.findings:
        party = PARTY_NAMES[lang][f.party]
        head = f"  [{f.clause}] {L['kind'].get(f.kind, f.kind)} · {party}"
        if f.station:
            head += f" {f.station}"
        if f.fine_cny != "0.00":
            head += f" · {L['fine']} {f.fine_cny}"
        if f.refund_cny != "0.00":
            head += f" · {L['refund']} {f.refund_cny}"
        if f.compensation_cny != "0.00":
            head += f" · {L['compensation']} {f.compensation_cny}"
        if f.severity != "error":
            head += f" · {L['severity'].get(f.severity, f.severity)}"
        out += [head, f"      {f.message}", f"      ({f.rule})"]
    out.append("")
    out.append(f"{L['classifications']}: "
               + (", ".join(L["classification"].get(c, c) for c in v.classifications) or L["none"]))
    out.append(f"{L['level']}: " + (str(v.complaint_level) if v.complaint_level else L["none"]))
    if v.deadlines:
        out.append(f"{L['deadlines']}:")
        for d in v.deadlines:
            actual = f" / {d.actual}" if d.actual else ""
            out.append(f"  {_pad(L['deadline'].get(d.name, d.name), 14)} {d.due}{actual}  {L['status'][d.status]}"
                       f"  [{d.clause}]")
    out.append(f"{L['fines']}: " + (", ".join(f"{k} {a}" for k, a in v.fines_cny.items()) or L["none"]))
    out.append(f"{L['refunds']}: {v.refunds_cny}")
    out.append(f"{L['compensations']}: "        # a payer is a station code, else a party (`network`)
               + (", ".join(f"{PARTY_NAMES[lang].get(k, k)} {a}" for k, a in v.compensation_cny.items())
                  or L["none"]))
    out.append(f"{L['missing']}: " + (", ".join(v.missing) or L["none"]))
    if v.not_covered:
        out.append(f"{L['not_covered']}:")
        out += [f"  {n}" for n in v.not_covered]
    return "\n".join(out) + "\n"
