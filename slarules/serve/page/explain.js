// The explanation (POST /v1/explain): every rule of the packs traced on this case. Rules that
// fired come first, each with the conditions that held and its counterfactuals (the smallest
// changes of the case that would flip it, as the server words them); the rest are folded away
// by status, with the condition that failed or the facts that were missing.

import { el } from "./dom.js";
import { label } from "./verdict.js";

const ORDER = ["fired", "overridden", "undecided", "not_fired", "not_applicable"];

function plain(value, W) {
  if (value === null || value === undefined) return W.absent;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function tests(rule, W, say) {
  const shown = rule.tests.filter((t) => t.result !== "unknown");
  if (!shown.length) return null;
  const word = rule.status === "fired" || rule.status === "overridden" ? W.because : W.failed;
  return el("ul", { class: "tests", "aria-label": say("tests") }, ...shown.map((t) => el("li", { class: `test ${t.result}` },
    el("span", { class: "word", text: `${word}: ` }), el("span", { class: "condition", text: t.condition }),
    el("span", { class: "saw", text: `  ${W.saw} ${Object.entries(t.saw).map(([k, v]) => `${k} = ${plain(v, W)}`).join(", ")}` }),
    el("span", { class: "where", title: say("where"), text: `  ${t.where}` }))));
}

function counterfactuals(rule, W, say) {
  if (!rule.counterfactuals.length) return null;
  return el("div", { class: "counterfactuals" }, el("h5", { text: say("counterfactuals") }),
    el("ol", {}, ...rule.counterfactuals.map((c) => el("li", { class: "counterfactual" },
      el("p", { class: "cf-text", text: c.text }),
      el("p", { class: "cf-changes" }, `${say("changes")}: `,
         ...Object.entries(c.changes).map(([k, v]) => el("code", { text: `${k} → ${plain(v, W)}` })))))));
}

function rule(r, W, say) {
  return el("article", { class: `rule ${r.status}`, "data-rule": r.rule },
    el("h4", {}, el("span", { class: "clause", text: r.clause }), ` ${r.title || r.rule} `,
       el("span", { class: `status ${r.status}`, text: label(W, r.status) }),
       r.overridden_by.length ? el("span", { class: "muted", text: ` ${W.by} ${r.overridden_by.join(", ")}` }) : null),
    el("p", { class: "rule-id muted", text: r.rule }),
    tests(r, W, say),
    r.missing.length ? el("p", { class: "missing", text: `${W.missing}: ${r.missing.join(", ")}` }) : null,
    counterfactuals(r, W, say));
}

// The explanation `x` (its JSON) in the labels `L` (GET /v1/labels, one language).
export function renderExplanation(x, L, say) {
  const W = L.explain;
  const by = new Map(ORDER.map((s) => [s, []]));
  for (const r of x.rules) (by.get(r.status) || by.set(r.status, []).get(r.status)).push(r);
  const shown = [...by.get("fired"), ...by.get("overridden")];
  const rest = [...by.entries()].filter(([s, rules]) => s !== "fired" && s !== "overridden" && rules.length);
  return [
    el("div", { class: "rules fired" }, ...shown.map((r) => rule(r, W, say))),
    el("details", { class: "rules rest" },
      el("summary", { text: `${say("other_rules")} (${rest.reduce((n, [, rules]) => n + rules.length, 0)}): `
        + rest.map(([s, rules]) => `${label(W, s)} ${rules.length}`).join(" · ") }),
      ...rest.flatMap(([, rules]) => rules.map((r) => rule(r, W, say)))),
  ];
}
