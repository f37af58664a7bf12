/**
 * Reads a request body with a size limit. On Node's HTTP server it reads the
 * IncomingMessage directly (the Web-stream path costs tens of microseconds a
 * call); elsewhere (tests calling the app without a server) the standard
 * Request body. Either way, bytes beyond the limit are never buffered.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { FlurryError } from '@flurry/core';

function tooLarge(limit: number): FlurryError {
  return new FlurryError('payload_too_large', `request body exceeds the limit of ${limit} bytes`);
}

export async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > limit) throw tooLarge(limit);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming) {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length > limit) throw tooLarge(limit);
    return bytes;
  }
  if (incoming.readableEnded || declared === 0) return new Uint8Array(0);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        incoming.resume(); // drain the rest so the connection can answer 413
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new FlurryError('bad_request', `reading the request body failed: ${err.message}`));
    };
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}
