/**
 * Reads a request body with a size limit. On Node's HTTP server it reads the
 * IncomingMessage directly (the Web-stream path costs tens of microseconds a
 * call); elsewhere (tests calling the app without a server) the standard
 * Request body. Either way, bytes beyond the limit are never buffered.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { FlurryError } from '@flurry/core';
import { header, rawHeader } from './request-headers.js';

function tooLarge(limit: number): FlurryError {
  return new FlurryError('payload_too_large', `request body exceeds the limit of ${limit} bytes`);
}

function readFailed(err: Error): FlurryError {
  return new FlurryError('bad_request', `reading the request body failed: ${err.message}`);
}

export async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming) return readIncomingBody(incoming, limit);
  if (Number(header(c, 'content-length') ?? NaN) > limit) throw tooLarge(limit);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > limit) throw tooLarge(limit);
  return bytes;
}

/** `readBody` on Node's IncomingMessage (the call routes, call-route/, read it so too). */
export function readIncomingBody(incoming: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(rawHeader(incoming, 'content-length') ?? NaN);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  if (incoming.readableEnded || declared === 0) return Promise.resolve(new Uint8Array(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = followBody(incoming, {
      data: (chunk) => {
        size += chunk.length;
        if (size > limit) {
          stop();
          incoming.resume(); // drain the rest so the connection can answer 413
          reject(tooLarge(limit));
          return;
        }
        chunks.push(chunk);
      },
      end: () => {
        stop();
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
      },
      error: (err) => {
        stop();
        reject(readFailed(err));
      },
    });
  });
}

/** How long, and how many bytes of, a request body nobody read is drained after its answer before the connection is closed. */
const DRAIN_MS = 500;
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * A request body still arriving after its answer (a refusal before the body was read) is read and dropped, as
 * node-server does for the app's routes, so that the connection can carry the next request; one that goes on too
 * long closes it.
 */
export function drainUnread(incoming: IncomingMessage): void {
  if (incoming.readableEnded || incoming.complete || incoming.destroyed) return;
  let read = 0;
  const timer = setTimeout(() => close(), DRAIN_MS);
  timer.unref();
  const stop = followBody(incoming, {
    data: (chunk) => {
      read += chunk.length;
      if (read > MAX_DRAIN_BYTES) close();
    },
    end: () => done(),
    error: () => done(),
  });
  const done = () => {
    clearTimeout(timer);
    stop();
  };
  const close = () => {
    done();
    if (!incoming.socket.destroyed) incoming.socket.destroySoon();
  };
  incoming.resume();
}

/** Listens to a body's chunks, its end, its error and (when asked) the client going away; returns what stops listening. */
function followBody(incoming: IncomingMessage, on: { data: (chunk: Buffer) => void; end: () => void; error: (err: Error) => void; aborted?: () => void }): () => void {
  incoming.on('data', on.data);
  incoming.on('end', on.end);
  incoming.on('error', on.error);
  if (on.aborted) incoming.on('aborted', on.aborted);
  return () => {
    incoming.off('data', on.data);
    incoming.off('end', on.end);
    incoming.off('error', on.error);
    if (on.aborted) incoming.off('aborted', on.aborted);
  };
}

/**
 * A request body as a stream that errors with 413 (or `overLimit()`: a
 * quota's own error) once more than `limit` bytes arrived (at once when
 * Content-Length says so). After an error the rest of the body is read and
 * dropped, so the connection can still carry the answer.
 */
export function streamBody(c: Context, limit: number, overLimit: () => FlurryError = () => tooLarge(limit)): ReadableStream<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const declared = Number(header(c, 'content-length') ?? NaN);
  if (declared > limit) {
    incoming?.resume();
    throw overLimit();
  }
  if (!incoming) return limitStream(c.req.raw.body ?? new ReadableStream({ start: (ctl) => ctl.close() }), limit, overLimit);
  let size = 0;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const fail = (err: Error) => {
        stop();
        controller.error(readFailed(err));
      };
      const stop = followBody(incoming, {
        data: (chunk) => {
          size += chunk.length;
          if (size > limit) {
            stop();
            incoming.resume();
            controller.error(overLimit());
            return;
          }
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
          // Backpressure: the object store writes slower than a local client sends.
          if ((controller.desiredSize ?? 1) <= 0) incoming.pause();
        },
        end: () => {
          stop();
          controller.close();
        },
        error: fail,
        aborted: () => fail(new Error('the client went away')),
      });
    },
    pull() {
      incoming.resume();
    },
    cancel() {
      incoming.resume();
    },
  }, { highWaterMark: 4 * 1024 * 1024, size: (chunk) => chunk.byteLength });
}

/** The same limit over a standard Request body (apps called without a Node server, as in unit tests). */
function limitStream(body: ReadableStream<Uint8Array>, limit: number, overLimit: () => FlurryError): ReadableStream<Uint8Array> {
  let size = 0;
  return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      size += chunk.length;
      if (size > limit) controller.error(overLimit());
      else controller.enqueue(chunk);
    },
  }));
}
