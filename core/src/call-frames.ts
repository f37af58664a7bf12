/**
 * The frames of a direct call channel: a TCP connection from the gateway to
 * a host holding functions warm, which carries function calls without the
 * broker's two hops (the queue group stays for placement and failover).
 *
 *   [u32 length of the rest][u8 type][u32 id][payload]
 *
 * The gateway's first frame is `hello` with the 32-byte token it gave the
 * host over NATS (OpenCallsRequest); the host answers `welcome` with its id,
 * or closes. Then each `call` (its trace, then an encoded InvokeRequest) is
 * answered by a `reply` (an encoded InvokeReply) or `declined` (not taken
 * here: the caller sends it to the queue group) with the same id. Frames are
 * only framing: every payload is decoded and checked as a NATS message is.
 *
 * A call thread's own connection (OpenCallsReply.threadPorts) speaks the same
 * frames, and two more from the host: `busy` (id 0, no payload) when the
 * thread takes other work from its host (a job's clone, a warm, a call from
 * the queue group) and calls sent to it meanwhile would be declined, and
 * `free` when it is done with that work.
 */
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';

export const FrameType = { hello: 1, welcome: 2, call: 3, reply: 4, declined: 5, busy: 6, free: 7 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: number;
  id: number;
  payload: Uint8Array;
}

const HEAD = 9;
/** The longest traceparent a call frame carries (a W3C one is 55 characters). */
const MAX_TRACE = 255;
/** What a call frame adds to its encoded request, at most: the length, type and id, and the trace. */
export const CALL_FRAME_OVERHEAD = 4 + 5 + 1 + MAX_TRACE;

/**
 * The largest frame either end of a channel takes, for a broker whose
 * max_payload is `maxPayloadBytes`: a call or reply as large as one through
 * the broker may be, with room for the frame and a reply's fields.
 */
export function channelFrameLimit(maxPayloadBytes: number): number {
  return maxPayloadBytes + 64 * 1024;
}

export function encodeFrame(type: FrameType, id: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEAD + payload.length);
  out.writeUInt32BE(payload.length + 5, 0);
  out[4] = type;
  out.writeUInt32BE(id >>> 0, 5);
  out.set(payload, HEAD);
  return out;
}

/**
 * Writes a frame; frames written in the same tick leave in one write (as the
 * NATS client batches): many calls at once cost one system call, not one each.
 */
export function writeFrame(socket: Writable, frame: Uint8Array): void {
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(() => socket.uncork());
  }
  socket.write(frame);
}

/**
 * A whole call frame, written once: its head, its traceparent (may be empty) and the encoded request; the request is
 * copied once, as the frame is the only buffer made (a large body is not copied twice on its way to the socket).
 */
export function encodeCallFrame(id: number, traceparent: string, request: Uint8Array): Buffer {
  const trace = traceparent.length <= MAX_TRACE ? traceparent : '';
  const out = Buffer.allocUnsafe(HEAD + 1 + trace.length + request.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = FrameType.call;
  out.writeUInt32BE(id >>> 0, 5);
  out[HEAD] = out.write(trace, HEAD + 1, 'latin1');
  out.set(request, HEAD + 1 + trace.length);
  return out;
}

/** A call frame's payload alone (encodeCallFrame less the head). */
export function callPayload(traceparent: string, request: Uint8Array): Uint8Array {
  return encodeCallFrame(0, traceparent, request).subarray(HEAD);
}

/** Splits a call frame's payload; undefined when it is too short for the trace it announces. */
export function splitCallPayload(payload: Uint8Array): { traceparent: string; request: Uint8Array } | undefined {
  if (payload.length < 1 || payload.length < 1 + payload[0]!) return undefined;
  const n = payload[0]!;
  return { traceparent: Buffer.from(payload.buffer, payload.byteOffset + 1, n).toString('latin1'), request: payload.subarray(1 + n) };
}

/**
 * Cuts a byte stream into frames. A frame longer than `maxFrameBytes` or
 * shorter than its head is an error: the peer is not speaking this protocol,
 * and the connection is closed.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** The whole frames `chunk` completes; throws on a frame that cannot be one. */
  push(chunk: Buffer): Frame[] {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: Frame[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const length = buf.readUInt32BE(at);
      if (length < 5 || length > this.maxFrameBytes) throw new Error(`a frame of ${length} bytes (at most ${this.maxFrameBytes})`);
      if (buf.length - at - 4 < length) break;
      frames.push({ type: buf[at + 4]!, id: buf.readUInt32BE(at + 5), payload: buf.subarray(at + HEAD, at + 4 + length) });
      at += 4 + length;
    }
    if (at < buf.length) {
      const rest = buf.subarray(at);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
    return frames;
  }
}

/** What the host end of a call connection does (answerCallConnection). */
export interface CallConnectionEnd {
  maxFrameBytes: number;
  /** Said in the welcome. */
  hostId: string;
  /** A connection that has not said a token it admits by then is closed. */
  helloTimeoutMs: number;
  /** Whether a hello's token was granted. */
  admits(token: Uint8Array): boolean;
  /** After the welcome is written. */
  welcomed?(): void;
  /** A call frame after the welcome. */
  call(id: number, payload: Uint8Array): void;
  /** A frame that is not the protocol: the connection is closed after this. */
  refused?(err: Error): void;
  closed?(): void;
}

/**
 * The host end of a call connection, the host's own channel or a call thread's: the first frame must be `hello`
 * with a token `admits` takes, within `helloTimeoutMs` (then `welcome` with the host id); after it only calls;
 * anything else, or a frame the reader refuses, closes the connection.
 */
export function answerCallConnection(socket: Socket, end: CallConnectionEnd): void {
  const reader = new FrameReader(end.maxFrameBytes);
  let authed = false;
  const hello = setTimeout(() => socket.destroy(), end.helloTimeoutMs);
  hello.unref();
  socket.on('error', () => undefined);
  socket.on('close', () => {
    clearTimeout(hello);
    end.closed?.();
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of reader.push(chunk)) {
        if (authed && frame.type === FrameType.call) end.call(frame.id, frame.payload);
        else if (!authed && frame.type === FrameType.hello && end.admits(frame.payload)) {
          authed = true;
          clearTimeout(hello);
          socket.write(encodeFrame(FrameType.welcome, 0, Buffer.from(end.hostId)));
          end.welcomed?.();
        } else throw new Error(authed ? `a frame of type ${frame.type} after the hello` : 'no valid token');
      }
    } catch (err) {
      end.refused?.(err as Error);
      socket.destroy();
    }
  });
}
