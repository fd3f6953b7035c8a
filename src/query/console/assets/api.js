// The public /v1 API, and nothing else: every answer is JSON, every error
// is {"code", "message"}, shown to the reader as the API said it.

/** An answer of the API that is not a 2xx, or no answer at all. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET `path` (with `params`, empty values left out) as JSON. */
export async function getJson(path, params = {}) {
  const url = withParams(path, params);
  let response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', `无法连接查询服务：${e.message}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const code = body && body.code ? body.code : `HTTP ${response.status}`;
    const message = body && body.message ? body.message : text.slice(0, 300);
    throw new ApiError(response.status, code, message);
  }
  if (body === null) {
    throw new ApiError(response.status, 'BAD_ANSWER', '查询服务的回答不是 JSON');
  }
  return body;
}

/** `path?params`, leaving out empty and undefined values. */
export function withParams(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      query.set(key, String(value));
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
