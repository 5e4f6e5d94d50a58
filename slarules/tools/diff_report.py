"""A pack diff for people: `diff.txt` (the CLI's output) and `diff.html` (inline SVG, no script, no network)."""
from __future__ import annotations

import html
from decimal import Decimal

from ..settlement.statement import _bars, _table

# Kinds of change, in the order reports list them, with what each means (diff.py counts them).
KINDS = {
    "findings_added": "findings added",
    "findings_removed": "findings removed",
    "liability_moved": "liability moved",
    "fines_changed": "fines changed",
    "refunds_changed": "refunds changed",
    "compensation_changed": "compensation changed",
    "complaint_level_changed": "complaint level changed",
    "classifications_changed": "classifications changed",
    "deadlines_changed": "deadlines changed",
    "missing_changed": "missing facts or cover changed",
    "messages_changed": "messages changed",
    "outcome_changed": "verdict on one side, rejected on the other",
}

TOP = 25      # stations in the fines chart


def _pack_line(p: dict) -> str:
    def side(versions):
        return ", ".join(f"{s['version']} {s['digest'][:15]}…" for s in versions) or "(none)"
    return f"{p['name']}: {side(p['base'])} → {side(p['head'])}"


def _money_rows(diff) -> list[tuple[str, str, dict]]:
    """(station, measure, base/head/delta) of every amount that changed, by station then measure."""
    rows = []
    for name, entry in diff.stations.items():
        for measure, amounts in sorted(entry.items()):
            if measure != "findings" and Decimal(amounts["delta"]) != 0:
                rows.append((name, measure, amounts))
    return rows


def render_text(diff) -> str:
    share = f" ({diff.changed / diff.cases:.1%})" if diff.cases else ""
    lines = [f"{diff.cases:,} cases: {_verdicts(diff.changed)} changed{share}"]
    changed_packs = [p for p in diff.packs if p["changed"]]
    lines += [f"  pack {_pack_line(p)}" for p in changed_packs] or ["  the packs are the same on both sides"]
    for key, label in KINDS.items():
        kind = diff.kinds[key]
        if not kind.count:
            continue
        lines.append(f"{label}: {kind.count:,}")
        if kind.detail:
            lines.append("  " + "; ".join(f"{d} ×{n:,}" for d, n in sorted(kind.detail.items())))
        if kind.examples:
            lines.append("  e.g. " + ", ".join(kind.examples))
    if diff.clauses:
        lines.append("findings per clause (verdicts that gained / lost one):")
        lines += [f"  {c}: +{n['added']:,} -{n['removed']:,}" for c, n in diff.clauses.items()]
    money = _money_rows(diff)
    if money:
        lines.append("money that moved (base → head, delta), CNY:")
        lines += [f"  {name} {measure}: {a['base']} → {a['head']} ({_signed(a['delta'])})" for name, measure, a in money]
    for measure, a in sorted(diff.totals.items()):
        lines.append(f"total {measure}: {a['base']} → {a['head']} ({_signed(a['delta'])})")
    return "\n".join(lines) + "\n"


def _verdicts(n: int) -> str:
    return f"{n:,} verdict" + ("" if n == 1 else "s")


def _signed(delta: str) -> str:
    return delta if delta.startswith("-") else "+" + delta


def render_html(diff, title: str) -> str:
    kinds = [(label, float(diff.kinds[k].count), f"{diff.kinds[k].count:,}") for k, label in KINDS.items()
             if diff.kinds[k].count]
    fines = sorted(((Decimal(e["fines_cny"]["delta"]), n) for n, e in diff.stations.items()
                    if "fines_cny" in e and Decimal(e["fines_cny"]["delta"]) != 0), key=lambda t: (-abs(t[0]), t[1]))
    shown = fines[:TOP]
    caption = "change in fines by station (head - base), CNY; bar length is the size of the change" + (
        f"; {len(fines) - TOP:,} more stations not shown" if len(fines) > TOP else "")
    clause_bars = []
    for clause, n in diff.clauses.items():
        clause_bars.append((f"{clause} added", float(n["added"]), f"{n['added']:,}"))
        clause_bars.append((f"{clause} removed", float(n["removed"]), f"{n['removed']:,}"))
    examples = [[KINDS[k], f"{v.count:,}", "; ".join(f"{d} ×{c:,}" for d, c in sorted(v.detail.items())),
                 ", ".join(v.examples)] for k, v in diff.kinds.items() if v.count]
    money = [[name, measure, a["base"], a["head"], _signed(a["delta"])] for name, measure, a in _money_rows(diff)]
    totals = [[m, a["base"], a["head"], _signed(a["delta"])] for m, a in sorted(diff.totals.items())]
    share = f" ({diff.changed / diff.cases:.1%})" if diff.cases else ""
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>",
             ("<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}"
              "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
              "th{background:#f3f3f3}svg text{font:11px sans-serif}</style>"),
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{diff.cases:,} cases: {_verdicts(diff.changed)} changed{share}.</p>",
             "<h2>Packs</h2>",
             _table(["pack", "base", "head", "changed"],
                    [[p["name"], _side(p["base"]), _side(p["head"]), "yes" if p["changed"] else ""] for p in diff.packs]),
             "<h2>Kinds of change</h2>", _bars(kinds, "verdicts with this kind of change"),
             _table(["kind", "verdicts", "breakdown", "examples (first in input order)"], examples) if examples else "",
             "<h2>Fines by station</h2>",
             _bars([(n, float(abs(d)), _signed(f"{d:.2f}")) for d, n in shown], caption),
             "<h2>Findings by clause</h2>", _bars(clause_bars, "verdicts that gained or lost a finding of the clause"),
             "<h2>Money that moved</h2>",
             _table(["station or party", "measure", "base", "head", "delta"], money) if money else "<p>none</p>",
             "<h2>Totals</h2>", _table(["measure", "base", "head", "delta"], totals), "</html>"]
    return "\n".join(parts) + "\n"


def _side(versions: list[dict]) -> str:
    return ", ".join(f"{s['version']} {s['digest']}" for s in versions) or "(none)"
