// Talking to the gateway as the API does: the key from sessionStorage as a bearer token, the API's error shape,
// and Server-Sent Events read with fetch (EventSource cannot send an Authorization header).

const KEY_ITEM = 'flurry.apiKey';
/** The gateway's root as this module sees it (`/ui/api.js` → `/`), so that the page works under a proxy's prefix too. */
const ROOT = new URL('../', import.meta.url);

/** An API path (`/v1/jobs`) under the gateway's root. */
const url = (path) => new URL(path.replace(/^\//, ''), ROOT);

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_ITEM) ?? '',
  set: (key) => sessionStorage.setItem(KEY_ITEM, key),
  forget: () => sessionStorage.removeItem(KEY_ITEM),
};

/** A refused request: `status` and the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { authorization: `Bearer ${key}`, ...extra } : extra;
}

async function refusal(res) {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text);
    return new ApiError(res.status, error.code, error.message);
  } catch {
    return new ApiError(res.status, 'http', `${res.status} ${text.slice(0, 200)}`);
  }
}

/** GET `path` of the API as JSON. */
export async function getJson(path, signal) {
  const res = await fetch(url(path), { headers: headers(), signal });
  if (!res.ok) throw await refusal(res);
  return res.json();
}

/**
 * Reads the event stream at `path`, calling `onEvent({ event, data, id })` for each event (data parsed as JSON),
 * until the stream ends or `signal` aborts. `lastEventId` resumes after that event.
 */
export async function readEvents(path, { signal, lastEventId, onEvent }) {
  const extra = { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) };
  const res = await fetch(url(path), { headers: headers(extra), signal });
  if (!res.ok) throw await refusal(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseBlock(block);
      if (parsed) onEvent(parsed);
    }
  }
}

/** One event of the stream; undefined for a comment (keep-alive). */
function parseBlock(block) {
  let event = 'message';
  let id;
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  if (data.length === 0) return undefined;
  return { event, id, data: JSON.parse(data.join('\n')) };
}
