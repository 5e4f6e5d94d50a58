// The claims officers' page: a case in (pasted, uploaded or a shipped example), the verdict and
// its explanation out, in Chinese or English. It talks only to the server that served it.

import { ApiError, call, json, setToken } from "./api.js";
import { $, el } from "./dom.js";
import { Editor } from "./editor.js";
import { renderExplanation } from "./explain.js";
import { LANGS, STRINGS, say as sayIn } from "./strings.js";
import { renderVerdict } from "./verdict.js";

const LANG_KEY = "slarules.lang";

const state = {
  lang: LANGS.includes(localStorage.getItem(LANG_KEY)) ? localStorage.getItem(LANG_KEY) : "zh",
  labels: null,        // GET /v1/labels: {zh: {...}, en: {...}}
  examples: [],        // GET /v1/examples
  packs: null,         // GET /v1/packs
  decided: null,       // the request of the verdict shown: {text, type, asOf, lang}
  verdict: null,       // its JSON, parsed
  bytes: null,         // its bytes as answered: what Copy and Download give
  meta: {},            // {decision, revision} from the answer's headers
  explanation: null,   // POST /v1/explain of the same request, once asked for
  error: null,         // the ApiError shown
};

const say = (key, values) => sayIn(state.lang, key, values);
const editor = new Editor($("case"), $("gutter"), $("marker"));

// ---- talking to the server -----------------------------------------------------------------

// A call that, when the server wants a token (401), asks for one and tries again with it.
async function authorised(method, path, options) {
  for (;;) {
    try {
      return await call(method, path, options);
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status !== 401) throw exc;
      const token = await askToken();
      if (token === null) throw exc;
      setToken(token);
    }
  }
}

let asking = null;      // the token being asked for: calls refused at once all wait for the one answer

function askToken() {
  const dialog = $("token-dialog");
  const input = $("token-input");
  asking ||= new Promise((resolve) => {
    input.value = "";
    dialog.addEventListener("close", () => {
      asking = null;
      resolve(dialog.returnValue === "ok" && input.value.trim() ? input.value.trim() : null);
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return asking;
}

// JSON when the text opens with { or [ (as a .json file does), else YAML: the server parses both.
function formatOf(text) {
  const first = text.trimStart()[0];
  return first === "{" || first === "[" ? "json" : "yaml";
}

const TYPES = { json: "application/json", yaml: "application/yaml" };

function request() {
  const text = editor.text;
  return { text, type: TYPES[formatOf(text)], asOf: $("as-of").value.trim(), lang: state.lang };
}

async function adjudicate(req = request()) {
  if (!req.text.trim()) return fail(new ApiError(400, { error: { kind: "request", message: say("empty_case") } }));
  busy(true);
  try {
    const answer = await authorised("POST", "/v1/adjudicate", {
      body: req.text, type: req.type, query: { lang: req.lang, as_of: req.asOf } });
    Object.assign(state, { decided: req, bytes: answer.bytes, verdict: json(answer.bytes), explanation: null,
                           error: null, meta: { decision: answer.headers.get("x-decision-id"),
                                                revision: answer.headers.get("x-pack-revision") } });
    editor.clearError();
    render();
  } catch (exc) {
    fail(exc);
  } finally {
    busy(false);
  }
}

async function explain() {
  const req = state.decided;
  if (!req) return;
  busy(true);
  try {
    const answer = await authorised("POST", "/v1/explain", {
      body: req.text, type: req.type, query: { lang: req.lang, as_of: req.asOf } });
    state.explanation = json(answer.bytes);
    render();
    $("explanation").scrollIntoView({ block: "start" });
  } catch (exc) {
    fail(exc);
  } finally {
    busy(false);
  }
}

// ---- showing what came back ----------------------------------------------------------------

function fail(exc) {
  state.error = exc instanceof ApiError ? exc : new ApiError(0, { error: { kind: "engine", message: String(exc) } });
  Object.assign(state, { decided: null, verdict: null, bytes: null, explanation: null });
  render();
  const e = state.error.error;
  if (e.line) editor.showError(e.line, e.column, e.field ? `${e.field}: ${e.message}` : e.message);
}

function renderError() {
  const box = $("error");
  const asOf = $("as-of");
  const asOfError = $("as-of-error");
  const exc = state.error;
  box.hidden = !exc;
  const onAsOf = Boolean(exc && exc.error.field === "as_of" && !exc.error.line);
  asOf.classList.toggle("invalid", onAsOf);
  asOfError.hidden = !onAsOf;
  if (!exc) return;
  const e = exc.error;
  if (onAsOf) asOfError.textContent = e.message;
  const where = [e.line ? say("error_at", { line: e.line, column: e.column || 1 }) : null,
                 e.field ? `${say("field")} ${e.field}` : null].filter(Boolean).join(" · ");
  box.replaceChildren(
    el("h3", { text: exc.status === 0 ? say("unreachable") : `${say("error")} (${exc.status})` }),
    el("p", { class: "message", text: e.message }),
    where ? el("p", { class: "where", text: where }) : null,
    e.hint ? el("p", { class: "hint", text: `${say("hint")}: ${e.hint}` }) : null,
    exc.requestId ? el("p", { class: "muted small", text: `${say("request_id")}: ${exc.requestId}` }) : null);
}

function render() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = say(node.dataset.t);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
  }
  $("as-of").placeholder = "2026-05-03T09:00:00+08:00";
  $("format").textContent = editor.text.trim() ? formatOf(editor.text).toUpperCase() : "—";
  renderRevision();
  renderError();
  const labels = state.labels && state.labels[state.lang];
  const shown = Boolean(state.verdict && labels);
  $("result").hidden = !shown;
  if (!shown) return;
  $("verdict").replaceChildren(...renderVerdict(state.verdict, state.meta, labels, say, $("verdict").clientWidth));
  $("explanation").hidden = !state.explanation;
  $("explanation-body").replaceChildren(...(state.explanation ? renderExplanation(state.explanation, labels, say) : []));
}

function renderRevision() {
  const p = state.packs;
  const node = $("revision");
  if (!p) { node.textContent = ""; return; }
  const revision = state.meta.revision || p.revision;
  node.textContent = `${say("revision")} ${revision.slice(0, 15)}…`;
  node.title = `${revision}\n` + p.packs.map((k) => `${k.name} ${k.version}`).join("\n");
}

function busy(on) {
  for (const id of ["adjudicate", "explain"]) $(id).disabled = on;
  $("busy").hidden = !on;
}

// ---- the controls --------------------------------------------------------------------------

function setLang(lang) {
  state.lang = lang;
  localStorage.setItem(LANG_KEY, lang);
  render();
  // Messages are written by the server in the request's language: ask again for the case shown.
  const req = state.decided;
  if (req && req.lang !== lang) {
    const explained = Boolean(state.explanation);
    adjudicate({ ...req, lang }).then(() => (explained && state.decided ? explain() : undefined));
  }
}

function saveAs(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/json" }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function copy() {
  const text = new TextDecoder().decode(state.bytes);
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {            // no clipboard permission: the old way, through a selection
    const area = el("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const button = $("copy");
  button.textContent = say("copied");
  setTimeout(() => { button.textContent = say("copy"); }, 1500);
}

function wire() {
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLang(button.dataset.lang));
  }
  $("adjudicate").addEventListener("click", () => adjudicate());
  $("explain").addEventListener("click", explain);
  $("copy").addEventListener("click", copy);
  $("download").addEventListener("click", () => {
    const name = `${state.verdict.waybill.replace(/[^A-Za-z0-9._-]/g, "_")}.verdict.json`;
    saveAs(state.bytes, name);
  });
  $("example").addEventListener("change", (event) => {
    const chosen = state.examples.find((x) => x.name === event.target.value);
    if (chosen) editor.text = chosen.case;
    render();
  });
  $("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    editor.text = await file.text();
    $("example").value = "";
    event.target.value = "";
    render();
  });
  $("case").addEventListener("keydown", (event) => {       // Ctrl+Enter (⌘+Enter): adjudicate
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); adjudicate(); }
  });
  $("case").addEventListener("input", () => { $("format").textContent = editor.text.trim()
    ? formatOf(editor.text).toUpperCase() : "—"; });
  $("as-of").addEventListener("input", () => { $("as-of").classList.remove("invalid"); $("as-of-error").hidden = true; });
}

function fillExamples() {
  const select = $("example");
  select.replaceChildren(select.firstElementChild, ...state.examples.map((x) => el("option", {
    value: x.name, title: x.title, text: x.title ? `${x.name} — ${x.title}` : x.name })));
}

async function start() {
  wire();
  render();
  try {
    const [labels, examples, packs] = await Promise.all(
      ["/v1/labels", "/v1/examples", "/v1/packs"].map((path) => authorised("GET", path)));
    state.labels = json(labels.bytes);
    state.examples = json(examples.bytes).examples;
    state.packs = json(packs.bytes);
    fillExamples();
  } catch (exc) {
    fail(exc);
  }
  render();
  document.body.dataset.ready = "true";      // the page has what it needs from the server
}

start();
