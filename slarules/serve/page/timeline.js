// The verdict's deadlines as a timeline: one row per deadline on a shared time axis, its due time
// (a diamond) against its actual time (a dot), joined by a bar coloured by its status (met,
// breached, open). An open deadline has no actual time: its bar runs to the verdict's as_of.
// Times are shown on the case's own clock (the offset each instant carries), not the browser's.

import { svg } from "./dom.js";

const LEFT = 150, RIGHT = 200, ROW = 30, TOP = 24, AXIS = 26, NARROWEST = 560;
const MINUTE = 60000;
const STEPS = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 4320, 10080, 20160, 43200].map((m) => m * MINUTE);

// An ISO 8601 instant with its offset: {ms since the epoch, offset minutes}.
export function instant(text) {
  const m = /([+-])(\d\d):?(\d\d)$|Z$/.exec(text);
  const offset = !m || !m[1] ? 0 : (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  return { ms: Date.parse(text), offset };
}

function pad(n) { return String(n).padStart(2, "0"); }

// Wall-clock "MM-DD HH:MM" (and the date alone for `dayOnly`) at `offset` minutes from UTC.
function wall(ms, offset, dayOnly = false) {
  const d = new Date(ms + offset * MINUTE);
  const day = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return dayOnly ? day : `${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

// "20 分钟", "3 h 5 min", "2 天 4 小时": the largest two units of `ms`.
export function duration(ms, say) {
  let minutes = Math.round(Math.abs(ms) / MINUTE);
  const days = Math.floor(minutes / 1440); minutes -= days * 1440;
  const hours = Math.floor(minutes / 60); minutes -= hours * 60;
  const parts = [];
  if (days) parts.push(`${days} ${say("days")}`);
  if (hours) parts.push(`${hours} ${say("hours")}`);
  if (minutes || !parts.length) parts.push(`${minutes} ${say("minutes")}`);
  return parts.slice(0, 2).join(" ");
}

// The <svg> of `deadlines` (the verdict's), `asOf` its as_of; `label(d)` a row's name,
// `status(s)` a status's label, `say` the page's strings; `width` the pixels it has (so that its
// text is drawn at the page's size, not scaled down).
export function timeline(deadlines, asOf, { label, status, say, width }) {
  const WIDTH = Math.max(NARROWEST, Math.floor(width || 0));
  const now = instant(asOf);
  const rows = deadlines.map((d) => ({ d, due: instant(d.due), actual: d.actual ? instant(d.actual) : null }));
  const times = [now.ms];
  for (const r of rows) times.push(r.due.ms, (r.actual || now).ms);
  let lo = Math.min(...times), hi = Math.max(...times);
  const span = Math.max(hi - lo, 10 * MINUTE);
  lo -= span * 0.04; hi += span * 0.04;
  const inner = WIDTH - LEFT - RIGHT;
  const x = (ms) => LEFT + ((ms - lo) / (hi - lo)) * inner;
  const height = TOP + rows.length * ROW + AXIS;
  const step = STEPS.find((s) => (hi - lo) / s <= 6) || STEPS[STEPS.length - 1];
  const offset = now.offset;
  const ticks = [];
  for (let t = Math.ceil((lo + offset * MINUTE) / step) * step - offset * MINUTE; t <= hi; t += step) {
    ticks.push(svg("g", { class: "tick" },
      svg("line", { x1: x(t), x2: x(t), y1: TOP - 4, y2: height - AXIS + 4 }),
      svg("text", { x: x(t), y: height - AXIS + 18, "text-anchor": "middle",
                    text: wall(t, offset, step >= 1440 * MINUTE) })));
  }
  const body = rows.map(({ d, due, actual }, i) => {
    const y = TOP + i * ROW + ROW / 2;
    const end = actual || now;
    const shown = actual
      ? `${actual.ms > due.ms ? say("late_by") : say("early_by")} ${duration(actual.ms - due.ms, say)}`
      : `${say("still_open")}`;
    const title = `${label(d)} [${d.clause}] · ${status(d.status)}\n${say("due")} ${wall(due.ms, due.offset)}`
      + (actual ? `\n${say("actual")} ${wall(actual.ms, actual.offset)}` : "") + `\n${shown}`;
    return svg("g", { class: `row ${d.status}`, "data-name": d.name },
      svg("title", { text: title }),
      svg("text", { class: "label", x: LEFT - 10, y: y + 4, "text-anchor": "end", text: `${label(d)} · ${d.clause}` }),
      svg("line", { class: actual ? "bar" : "bar open", x1: x(due.ms), x2: x(end.ms), y1: y, y2: y }),
      svg("path", { class: "due", d: `M${x(due.ms)} ${y - 7}l7 7l-7 7l-7 -7z` }),
      actual ? svg("circle", { class: "actual", cx: x(actual.ms), cy: y, r: 5 }) : null,
      svg("text", { class: "delta", x: WIDTH - RIGHT + 8, y: y + 4, text: `${status(d.status)} · ${shown}` }));
  });
  const asOfX = x(now.ms);
  return svg("svg", { class: "timeline", viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height,
                      role: "img", "aria-label": say("timeline") },
    ...ticks,
    svg("line", { class: "asof", x1: asOfX, x2: asOfX, y1: TOP - 6, y2: height - AXIS + 4 }),
    svg("text", { class: "asof-label", x: asOfX, y: TOP - 10, "text-anchor": "middle",
                  text: `${say("now")} ${wall(now.ms, now.offset)}` }),
    ...body);
}
