/** A Server-Sent Events parser over a fetch body stream (the WHATWG `text/event-stream` rules), with no dependencies. */

/**
 * One dispatched event: its `event:` type (`message` when absent), its `data:` lines joined
 * with `\n`, and the last `id:` seen on the stream.
 *
 * @example
 * for await (const message of readServerSentEvents(response.body!)) console.log(message.event, JSON.parse(message.data));
 */
export interface ServerSentEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Yields the events of a `text/event-stream` body as they arrive. Comment lines (`: ping`)
 * are skipped, as are events without any `data:` line; lines may end in `\n`, `\r\n` or `\r`
 * and may be split across chunks anywhere. An event left unterminated when the stream ends
 * is dropped, as the standard says. Stopping the iteration cancels the stream.
 */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let lastId: string | undefined;
  let first = true;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      if (first && buffer.length > 0) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
        first = false;
      }
      for (;;) {
        const end = lineEnd(buffer);
        if (end === undefined) break;
        const line = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end.length);
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id: lastId };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id' && !value.includes('\0')) lastId = value;
        // `retry:` and unknown fields: nothing to do for a client that reconnects on its own terms.
      }
    }
  } finally {
    // Also runs when the consumer stops early: drop the connection instead of leaving it open.
    reader.cancel().catch(() => undefined);
  }
}

/**
 * The first line ending in `buffer`. A `\r` at the very end is not taken yet: it may be the
 * first half of a `\r\n` split across two chunks.
 */
function lineEnd(buffer: string): { index: number; length: number } | undefined {
  for (let i = 0; i < buffer.length; i++) {
    const c = buffer.charCodeAt(i);
    if (c === 10) return { index: i, length: 1 };
    if (c === 13) {
      if (i + 1 === buffer.length) return undefined;
      return { index: i, length: buffer.charCodeAt(i + 1) === 10 ? 2 : 1 };
    }
  }
  return undefined;
}
