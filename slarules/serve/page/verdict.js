// The verdict as a claims officer reads it: findings, totals per station, the deadlines' timeline,
// missing facts and what the packs do not cover. Every number shown is the verdict's own (its
// money maps are already summed per payer by the server); nothing is recomputed here.

import { el } from "./dom.js";
import { timeline } from "./timeline.js";

// A code's label from one of the CLI's tables (`table` may be absent or lack it: the code itself).
export function label(table, code) {
  return (table && table[code]) || code;
}

function money(amount) {
  return amount === "0.00" ? "" : amount;
}

function section(id, title, ...content) {
  return el("section", { id, class: "part" }, el("h3", { text: title }), ...content);
}

function findings(v, L, say) {
  const V = L.verdict;
  if (!v.findings.length) return section("findings", `${V.findings} (0)`, el("p", { class: "muted", text: V.none }));
  const columns = [say("clause"), say("kind"), say("party"), say("station"), V.fine, V.refund, V.compensation];
  const head = el("tr", {}, ...columns.map((t) => el("th", { text: t })));
  // A finding is two rows: its codes and amounts, then its message across the table's width.
  const rows = v.findings.flatMap((f) => [
    el("tr", { class: `finding severity-${f.severity}`, "data-clause": f.clause },
      el("td", { class: "clause", title: f.rule, text: f.clause }),
      el("td", { text: label(V.kind, f.kind) }),
      el("td", { class: "party", text: label(L.party, f.party) }),
      el("td", { class: "station", text: f.station || "" }),
      el("td", { class: "num fine", text: money(f.fine_cny) }),
      el("td", { class: "num refund", text: money(f.refund_cny) }),
      el("td", { class: "num compensation", text: money(f.compensation_cny) })),
    el("tr", { class: `finding-message severity-${f.severity}` },
      el("td", { class: "message", colspan: columns.length, "aria-label": say("message"), text: f.message }))]);
  return section("findings", `${V.findings} (${v.findings.length})`,
                 el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
}

// Who pays what: the verdict's fines and compensation per payer (a station, else a party such as
// the network), and its refunds total.
function totals(v, L, say) {
  const V = L.verdict;
  const payers = [...new Set([...Object.keys(v.fines_cny), ...Object.keys(v.compensation_cny)])].sort();
  const rows = payers.map((p) => el("tr", { "data-payer": p },
    el("td", { text: label(L.party, p) }),
    el("td", { class: "num", text: v.fines_cny[p] || "" }),
    el("td", { class: "num", text: v.compensation_cny[p] || "" })));
  const table = el("table", { class: "totals" },
    el("thead", {}, el("tr", {}, ...[say("payer"), V.fines, V.compensations].map((t) => el("th", { text: t })))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: V.none }))])));
  return section("totals", say("totals"), table,
                 el("p", { class: "refunds" }, `${V.refunds}: `, el("strong", { text: v.refunds_cny })));
}

function deadlines(v, L, say, width) {
  const V = L.verdict;
  if (!v.deadlines.length) return section("deadlines", say("timeline"), el("p", { class: "muted", text: V.none }));
  return section("deadlines", say("timeline"), el("div", { class: "scroll" }, timeline(v.deadlines, v.as_of, {
    label: (d) => label(V.deadline, d.name), status: (s) => label(V.status, s), say, width })));
}

function list(id, title, items, none) {
  return section(id, title, items.length ? el("ul", {}, ...items.map((t) => el("li", { text: t })))
                                         : el("p", { class: "muted", text: none }));
}

// The verdict `v` (its JSON), with `meta` {decision, revision} from the answer's headers, in a
// container `width` pixels wide.
export function renderVerdict(v, meta, L, say, width) {
  const V = L.verdict;
  const facts = el("dl", { class: "meta" },
    el("dt", { text: V.waybill }), el("dd", { id: "waybill", text: v.waybill }),
    el("dt", { text: V.as_of }), el("dd", { text: v.as_of }),
    el("dt", { text: V.classifications }),
    el("dd", { text: v.classifications.map((c) => label(V.classification, c)).join(say("list_separator")) || V.none }),
    el("dt", { text: V.level }), el("dd", { text: v.complaint_level ?? V.none }),
    meta.decision ? [el("dt", { text: say("decision") }), el("dd", { class: "code", text: meta.decision })] : null,
    el("dt", { text: V.packs }), el("dd", { text: v.packs.map((p) => `${p.name} ${p.version}`).join(", ") }));
  return [facts, findings(v, L, say), totals(v, L, say), deadlines(v, L, say, width),
          list("missing", V.missing, v.missing, V.none), list("not-covered", V.not_covered, v.not_covered, V.none)];
}
