// The page's calls to the server: same origin, so the token cookie set by /?token= rides along;
// a token typed into the page instead is sent as `Authorization: Bearer`. Every answer that is
// not a 2xx becomes an ApiError carrying the server's located error ({error: {...}, request_id}).

let bearer = null;

export function setToken(token) {
  bearer = token || null;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.error = (body && body.error) || { kind: "request", message: `HTTP ${status}` };
    this.requestId = body && body.request_id;
  }
}

// {status, headers, bytes} of a 2xx answer; ApiError otherwise (status 0: the server is unreachable).
export async function call(method, path, { body, type, query } = {}) {
  const headers = {};
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (type) headers["Content-Type"] = type;
  const search = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString() : "";
  let response;
  try {
    response = await fetch(search ? `${path}?${search}` : path,
                           { method, headers, body, credentials: "same-origin", cache: "no-store" });
  } catch (exc) {
    throw new ApiError(0, { error: { kind: "request", message: String(exc) } });
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (!response.ok) {
    let parsed = null;
    try { parsed = JSON.parse(new TextDecoder().decode(bytes)); } catch (_) { /* not JSON: said by status */ }
    throw new ApiError(response.status, parsed);
  }
  return { status: response.status, headers: response.headers, bytes };
}

export function json(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes));
}
