/**
 * A call message written into a SharedArrayBuffer slot and read in place by
 * its guest thread: no structured clone at either end. On a thread woken from
 * its mailbox's doorbell that is the longest step left between a fork request
 * and the clone's first instruction (docs/fork.md, "The guest thread's
 * mailbox"). One slot per thread is enough: a thread runs one job at a time
 * and is sent the next only after it answered the last, which it does after
 * taking its message. Anything that does not fit goes through the port.
 */
import type { ToThread } from './thread-messages.js';
import type { EntryPoint } from './instance.js';

type CallMessage = Extract<ToThread, { type: 'call' }>;

/** Bytes of a call's frame at most: its input and strings; a larger call goes through the port. */
export const CALL_FRAME_BYTES = 16 * 1024;

/** Int32 header: whether the slot holds a frame, and the mailbox sequence number it was posted at. */
const STATE = 0;
const SEQUENCE = 1;
const HEADER_BYTES = 8;
const FREE = 0;
const FULL = 1;

const ENTRIES: readonly EntryPoint[] = ['handle', 'run', 'run_task', 'reduce'];
const NOTIFY_START = 1;
const HAS_MAX_OUTPUT = 2;
const HAS_REQUEST = 4;

/**
 * Every field of a call message, so that a field added to the type and not
 * written here is a compile error; a message with a key not listed (added at
 * run time) goes through the port.
 */
const FIELDS: Record<keyof CallMessage, true> = { type: true, id: true, key: true, entry: true, args: true, input: true, request: true, notifyStart: true, maxOutputBytes: true };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The slot of one thread, as its writer (the pool's main thread) or its reader (the thread) sees it. */
export class CallFrameSlot {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(readonly buffer = new SharedArrayBuffer(HEADER_BYTES + CALL_FRAME_BYTES)) {
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(buffer, HEADER_BYTES);
    this.view = new DataView(buffer, HEADER_BYTES);
  }

  /** Writes `msg` as the message numbered `sequence`; false (nothing written) when it must go through the port. */
  write(msg: ToThread, sequence: number): boolean {
    if (msg.type !== 'call' || Atomics.load(this.header, STATE) !== FREE || !fits(msg)) return false;
    const { view, bytes } = this;
    let at = 0;
    const u8 = (v: number) => (bytes[at++] = v);
    const f64 = (v: number) => {
      view.setFloat64(at, v, true);
      at += 8;
    };
    const text = (s: string) => {
      const { written } = encoder.encodeInto(s, bytes.subarray(at + 4));
      view.setUint32(at, written, true);
      at += 4 + written;
    };
    f64(msg.id);
    u8(ENTRIES.indexOf(msg.entry));
    u8((msg.notifyStart ? NOTIFY_START : 0) | (msg.maxOutputBytes !== undefined ? HAS_MAX_OUTPUT : 0) | (msg.request ? HAS_REQUEST : 0));
    if (msg.maxOutputBytes !== undefined) f64(msg.maxOutputBytes);
    text(msg.key);
    u8(msg.args.length);
    for (const a of msg.args) f64(a);
    view.setUint32(at, msg.input.length, true);
    bytes.set(msg.input, at + 4);
    at += 4 + msg.input.length;
    if (msg.request) {
      text(msg.request.method);
      text(msg.request.path);
      text(msg.request.query);
      view.setUint32(at, msg.request.headers.length, true);
      at += 4;
      for (const [name, value] of msg.request.headers) {
        text(name);
        text(value);
      }
    }
    this.header[SEQUENCE] = sequence;
    Atomics.store(this.header, STATE, FULL);
    return true;
  }

  /** The message numbered `sequence` if this slot holds it (the slot is free again once it returns), else undefined. */
  take(sequence: number): CallMessage | undefined {
    if (Atomics.load(this.header, STATE) !== FULL || this.header[SEQUENCE] !== sequence) return undefined;
    // Read in place; only the input is copied out. Nothing writes the slot until it is marked free below.
    const { view, bytes } = this;
    let at = 0;
    const f64 = () => {
      const v = view.getFloat64(at, true);
      at += 8;
      return v;
    };
    const text = () => {
      const n = view.getUint32(at, true);
      at += 4;
      return decoder.decode(bytes.subarray(at, (at += n)));
    };
    const id = f64();
    const entry = ENTRIES[bytes[at++]];
    const flags = bytes[at++];
    const maxOutputBytes = flags & HAS_MAX_OUTPUT ? f64() : undefined;
    const key = text();
    const args = Array.from({ length: bytes[at++] }, f64);
    const inputLength = view.getUint32(at, true);
    at += 4;
    const input = bytes.slice(at, (at += inputLength));
    const msg: CallMessage = { type: 'call', id, key, entry, args, input, notifyStart: (flags & NOTIFY_START) !== 0 };
    if (maxOutputBytes !== undefined) msg.maxOutputBytes = maxOutputBytes;
    if (flags & HAS_REQUEST) {
      const method = text();
      const path = text();
      const query = text();
      const count = view.getUint32(at, true);
      at += 4;
      const headers = Array.from({ length: count }, (): [string, string] => [text(), text()]);
      msg.request = { method, path, query, headers };
    }
    Atomics.store(this.header, STATE, FREE);
    return msg;
  }
}

/** Whether a call's frame surely fits the slot (a UTF-8 byte per UTF-16 unit at most 3), and has no field this module does not write. */
function fits(msg: CallMessage): boolean {
  for (const k in msg) if (!(k in FIELDS)) return false;
  if (msg.args.length > 255 || !ENTRIES.includes(msg.entry)) return false;
  let strings = msg.key.length;
  let count = 1;
  if (msg.request) {
    strings += msg.request.method.length + msg.request.path.length + msg.request.query.length;
    for (const [name, value] of msg.request.headers) strings += name.length + value.length;
    count += 3 + 2 * msg.request.headers.length;
  }
  // id, entry, flags, max output, argument count, the arguments, input length, header count; each string's length.
  const fixed = 8 + 1 + 1 + 8 + 1 + 8 * msg.args.length + 4 + 4 + 4 * count;
  return fixed + 3 * strings + msg.input.length <= CALL_FRAME_BYTES;
}
