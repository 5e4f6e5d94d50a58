#!/usr/bin/env node
// slarules from Node 20, over HTTP: post case files to `slarules serve`, print each verdict.
//
//   node client.mjs [--lang zh|en] [--as-of INSTANT] URL CASE...
//   node client.mjs http://127.0.0.1:8080 ../cases/tb1-late.yaml > verdict.json
//
// No dependencies (Node's global fetch). Each verdict is written to stdout exactly as the server
// sent it: the bytes of `slarules adjudicate --format json`. With SLARULES_TOKEN set, it is sent
// as a bearer token (for a server started with --token-file). A refused case prints the server's
// located error (JSON: message, line, column, field) on stderr; the exit status is then 2 (the
// case or request was refused: 4xx) or 1 (the server failed or could not be reached), as the CLI's are.
import { readFile } from "node:fs/promises";

const USAGE = "usage: node client.mjs [--lang zh|en] [--as-of INSTANT] URL CASE...";

function fail(status, message) {
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(status);
}

// JSON or YAML by the file's extension; any other: none, and the server tells them apart.
function contentType(file) {
  const name = file.toLowerCase();
  if (name.endsWith(".json")) return "application/json";
  if (name.endsWith(".yaml") || name.endsWith(".yml")) return "application/yaml";
  return null;
}

const query = new URLSearchParams();
const rest = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--lang" || args[i] === "--as-of") {
    if (i + 1 === args.length) fail(2, USAGE);
    query.set(args[i] === "--lang" ? "lang" : "as_of", args[++i]);
  } else {
    rest.push(args[i]);
  }
}
if (rest.length < 2) fail(2, USAGE);
const url = new URL(`${rest[0].replace(/\/+$/, "")}/v1/adjudicate`);
url.search = query.toString();
const token = (process.env.SLARULES_TOKEN || "").trim();

let status = 0;
for (const file of rest.slice(1)) {
  let body;
  try {
    body = await readFile(file);
  } catch (exc) {
    fail(2, `${file}: ${exc.code === "ENOENT" ? "no such file" : exc.message}`);
  }
  const headers = {};
  const type = contentType(file);
  if (type) headers["Content-Type"] = type;
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(60000) });
  } catch (exc) {
    fail(1, `${url}: ${exc.cause?.message || exc.message}`);
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status === 200) {
    process.stdout.write(bytes);
  } else {
    process.stderr.write(`${file}: HTTP ${response.status} `);
    process.stderr.write(bytes);
    status = Math.max(status, response.status < 500 ? 2 : 1);
  }
}
process.exitCode = status;
