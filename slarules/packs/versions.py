"""Dated pack versions: which version of a pack is in force for a case.

A pack may say `effective: {from, until, by}`: the days (inclusive, in the
pack's time zone) on which it is in force for a case, judged by the case's
`by` instant (default `collected_at`: the collect scan, else the earliest).
Several versions of one pack may then be loaded together. The window is not
a backend feature: it becomes a condition in the compiled Program (the first
child of each of the version's rule scopes, and the pack's `window`), so
durable_rules, Polars, Spark, explain and the verdict all read it the same
way. A case that no version covers gets one `not_covered` line per pack,
from a rule this module writes, so that too runs on every backend unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from ..case import zones
from ..echo import quote
from . import types as T
from .program import CompiledRule, Leaf, Node

if TYPE_CHECKING:          # not at run time: a cached Program runs without the pack models (Pydantic)
    from .model import Pack

DEFAULT_BY = "collected_at"
NOT_IN_FORCE = "{pack}.no-version-in-force"      # the id of the rule that reports a case no version covers
NO_INSTANT = "{pack}.no-version-instant"         # ... and a case without the instant a version is chosen by


@dataclass(frozen=True)
class Window:
    """One dated version's days, and the instants they span in its zone: [start, end)."""

    pack: Pack
    first: date | None
    last: date | None
    by: str
    start: datetime | None
    end: datetime | None          # 00:00 of the day after `last`: `until` is inclusive

    @property
    def where(self) -> str:
        line, _ = self.pack.where(("effective",))
        return f"{self.pack.doc.file}:{line}"

    @property
    def origin(self) -> str:
        line, _ = self.pack.where(("effective",))
        return f"{Path(self.pack.doc.file).name}:{line}"

    def days(self, lang: str = "en") -> str:
        """"2026-01-01 to 2026-06-30", "from 2026-07-01", "until 2025-12-31" or "always" (zh: in Chinese)."""
        if lang == "zh":
            if self.first and self.last:
                return f"{self.first} 至 {self.last}"
            if self.first:
                return f"{self.first} 起"
            return f"至 {self.last}" if self.last else "始终"
        if self.first and self.last:
            return f"{self.first} to {self.last}"
        if self.first:
            return f"from {self.first}"
        return f"until {self.last}" if self.last else "always"

    def bounds(self, at_start: str, at_end: str) -> list[Leaf]:
        """`by <at_start> start` and `by <at_end> end`, for the bounds the window has."""
        return [Leaf(op, self.by, T.INSTANT.encode(edge), shown=edge, origin=self.origin)
                for op, edge in ((at_start, self.start), (at_end, self.end)) if edge is not None]

    def condition(self) -> Node:
        """In force: start <= by < end, as the rules' scopes test it; with no bounds, `by` is still needed."""
        leaves = self.bounds("ge", "lt") or [Leaf("exists", self.by, True, origin=self.origin)]
        return Node("all", tuple(leaves), f"in_force_{_slug(self.pack.model.version)}", self.origin)

    def outside(self) -> Node:
        """Not in force: by < start or by >= end (false when unbounded)."""
        return Node("any", tuple(self.bounds("lt", "ge")), None, self.origin)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def window_of(pack: Pack, issue) -> Window | None:
    """The pack's window, or None when it has no `effective` (or a bad one: reported through `issue`)."""
    eff = pack.model.effective
    if eff is None:
        return None
    days: dict[str, date | None] = {}
    for key, text in (("from", eff.from_), ("until", eff.until)):
        if text is None:
            days[key] = None
            continue
        try:
            days[key] = date.fromisoformat(text)
        except ValueError as exc:
            issue(pack, ("effective", key), f"`{quote(text)}` is not a date: {exc}", "write YYYY-MM-DD")
            return None
    if days["from"] and days["until"] and days["from"] > days["until"]:
        issue(pack, ("effective", "until"), f"`until` {days['until']} is before `from` {days['from']}")
        return None
    try:
        zone = zones.zone(pack.model.timezone)
    except ValueError as exc:
        issue(pack, ("timezone",), str(exc))
        return None
    start = datetime.combine(days["from"], time(0), zone) if days["from"] else None
    end = datetime.combine(days["until"] + timedelta(days=1), time(0), zone) if days["until"] else None
    return Window(pack, days["from"], days["until"], eff.by or DEFAULT_BY, start, end)


def check_versions(packs: list[Pack], windows: dict[int, Window], issue) -> None:
    """Versions of one pack: all dated, one `by`, no two in force at once (error), gaps (warning)."""
    by_name: dict[str, list[Pack]] = {}
    for pack in packs:
        by_name.setdefault(pack.name, []).append(pack)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        undated = [p for p in group if p.model.effective is None]
        if undated:
            for p in undated:
                other = next(o for o in group if o is not p)
                line, _ = other.where(("pack",))
                issue(p, ("pack",), f"pack `{name}` is loaded twice and this version has no `effective` dates",
                      f"also in {other.doc.file}:{line}; give each version `effective: {{from, until}}`")
            continue
        dated = [windows[id(p)] for p in group if id(p) in windows]
        if len(dated) < len(group):
            continue           # a bad window is reported already
        for w in dated[1:]:
            if w.by != dated[0].by:
                issue(w.pack, ("effective", "by"), f"versions of pack `{name}` choose by different instants "
                      f"(`{quote(w.by)}` here, `{quote(dated[0].by)}` in {dated[0].where})")
        ordered = sorted(dated, key=lambda w: (w.start is not None, w.start or datetime.min.replace(tzinfo=UTC)))
        for a, b in pairwise(ordered):
            if a.end is None or b.start is None or b.start < a.end:
                for this, peer in ((a, b), (b, a)):
                    issue(this.pack, ("effective",), f"versions `{quote(a.pack.model.version)}` ({a.days()}) and "
                          f"`{quote(b.pack.model.version)}` ({b.days()}) of pack `{name}` are both in force "
                          "on some days",
                          f"the other is {peer.where}")
            elif b.start > a.end:
                issue(b.pack, ("effective", "from"), f"no version of pack `{name}` is in force from "
                      f"{a.end.date()} to {(b.start - timedelta(days=1)).date()}, between versions "
                      f"`{quote(a.pack.model.version)}` and `{quote(b.pack.model.version)}`",
                      f"cases collected then get `not_covered` for `{name}`", severity="warning")


def not_in_force_rules(name: str, windows: list[Window]) -> list[CompiledRule]:
    """The rules that report a case no version of pack `name` covers: its instant is outside every
    version (none when every instant is covered), or it has no such instant (NATIONAL.md: not covered)."""
    ordered = sorted(windows, key=lambda w: (w.start is not None, w.start or datetime.min.replace(tzinfo=UTC)))
    by = ordered[0].by
    spans = "; ".join(f"{w.pack.model.version} {w.days()}" for w in ordered)
    spans_zh = "；".join(f"{w.pack.model.version} {w.days('zh')}" for w in ordered)
    first = ordered[0].pack
    what = ("the collection instant (no scans)", "揽收时间（无扫描记录）") if by == DEFAULT_BY else (f"`{by}`", by)
    no_instant = CompiledRule(
        id=NO_INSTANT.format(pack=name), clause=name, pack=name, title=f"no instant to choose a version of {name} by",
        kind="not_covered", party="none", station_fact=None, severity="info", classify=None, level=None,
        fine=None, refund=None, scope=Node("all", (Leaf("exists", by, False, origin=ordered[0].origin),)),
        when=Node("all", ()), facts=(),
        messages={"zh": f"缺少{what[1]}，无法确定生效版本（版本：{spans_zh}）",
                  "en": f"no version can be chosen without {what[0]} (versions: {spans})"},
        overrides=(), deadline=None, location=(first.doc.file, first.where(("effective",))[0]))
    gapless = all(a.end is not None and b.start is not None and a.end >= b.start for a, b in pairwise(ordered))
    if gapless and ordered[0].start is None and ordered[-1].end is None:
        return [no_instant]
    outside = Node("all", tuple(w.outside() for w in ordered), None, ordered[0].origin)
    spans_zh = "；".join(f"{w.pack.model.version} {w.days('zh')}" for w in ordered)
    zone = ordered[0].pack.model.timezone
    zone_zh = "北京时间" if zone == "Asia/Shanghai" else zone
    return [no_instant, CompiledRule(
        id=NOT_IN_FORCE.format(pack=name), clause=name, pack=name, title=f"no version of {name} in force",
        kind="not_covered", party="none", station_fact=None, severity="info", classify=None, level=None,
        fine=None, refund=None, scope=Node("all", (Leaf("exists", by, True, origin=ordered[0].origin), outside)),
        when=Node("all", ()), facts=(by,),
        messages={"zh": f"{{{by}|datetime}} 无生效版本（版本：{spans_zh}；日期按{zone_zh}）",
                  "en": f"no version in force at {{{by}|datetime}} (versions: {spans}; days in {zone})"},
        overrides=(), deadline=None, location=(first.doc.file, first.where(("effective",))[0]))]


# ---- dated articles in the clause catalogue ----------------------------------------------------

def days_of(first: object, last: object) -> tuple[date | None, date | None] | None:
    """A catalogue variant's `from` and `until` as days, or None when one is not a date (the catalogue's
    check, model.article_issues, says so)."""
    try:
        return (date.fromisoformat(first) if first else None,      # type: ignore[arg-type]  # else TypeError
                date.fromisoformat(last) if last else None)        # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


def articles(clause_id: str, entry: dict, pack: Pack, window: Window | None, issue, loc: tuple) -> tuple:
    """What `{article}` says in a rule's message: ((condition on the pack's `by` instant, article), ...).

    An undated clause has one article, always. A dated one is resolved against the
    citing pack's version: the variants that overlap its window, each with the days
    it covers in the pack's zone (no condition when one variant covers the whole
    version). The variants must cover the version's every day, and an undated pack
    cannot quote a dated article (it has no instant to choose by).
    """
    variants = entry.get("versions") or []
    if not variants:
        if not entry.get("article"):
            issue(pack, loc, f"the message quotes {{article}}, but clause `{quote(clause_id)}` has no `article` "
                             "in the catalogue")
            return ()
        return ((Node("all", ()), str(entry["article"])),)
    if window is None:
        issue(pack, loc, f"clause `{quote(clause_id)}` cites different articles on different days, and this pack has "
                         "no `effective` dates to choose one by", "give the pack `effective: {from, until}`")
        return ()
    zone = window.start.tzinfo if window.start else window.end.tzinfo if window.end else zones.zone(
        pack.model.timezone)
    out, covered = [], []
    for raw in variants:
        days = days_of(raw.get("from"), raw.get("until")) if isinstance(raw, dict) else None
        if days is None:
            return ()                               # reported with the catalogue
        start = datetime.combine(days[0], time(0), zone) if days[0] else None
        end = datetime.combine(days[1] + timedelta(days=1), time(0), zone) if days[1] else None
        if (end is not None and window.start is not None and end <= window.start) or \
                (start is not None and window.end is not None and start >= window.end):
            continue                                # not in force during this version
        whole = (start is None or (window.start is not None and start <= window.start)) and \
                (end is None or (window.end is not None and end >= window.end))
        variant = Window(pack, days[0], days[1], window.by, start, end)
        out.append((Node("all", ()) if whole else variant.condition(), str(raw["article"])))
        covered.append(variant)
    gaps = _uncovered(window, covered)
    if gaps:
        issue(pack, loc, f"clause `{quote(clause_id)}` has no article for {gaps} while this version is in force",
              "add a dated variant to the catalogue, or change the version's `effective` dates")
    return tuple(out)


def _uncovered(window: Window, variants: list[Window]) -> str | None:
    """The first stretch of `window` no variant covers, as text ("2025-07-01 to 2025-07-31"), or None."""
    low = datetime.min.replace(tzinfo=UTC)
    high = datetime.max.replace(tzinfo=UTC)
    at, stop = window.start or low, window.end or high
    for v in sorted(variants, key=lambda v: v.start or low):
        if (v.start or low) > at:
            stop = min(stop, v.start or low)      # not None: it is past `at`
            break
        at = max(at, v.end or high)
    if at >= (window.end or high):
        return None
    first = "the beginning" if at == low else str(at.date())
    last = "ever after" if stop == high else str((stop - timedelta(days=1)).date())
    return f"{first} to {last}"
