/**
 * A migration's page stream: the pre-copy rounds' pages on a TCP connection
 * between the two hosts, beside the NATS steps (docs/services.md,
 * "Migration"). Through the broker a page chunk of ~1 MiB is longer than one
 * socket read, and the NATS client reassembles it in buffers that grow to
 * twice their size at each step: about 4.5 MiB of garbage on the target's
 * main thread per 0.94 MiB of pages, whose mark-compacts fell in the rounds,
 * the pause and the first answers. Here the target reads into one buffer it
 * reuses (`onread`), copies each frame's pages into slots of a
 * SharedArrayBuffer, and its guest thread writes them from there into the
 * instance's memory: nothing per page is allocated on either thread.
 *
 *   [u32 BE length of the rest][u8 type][u32 BE id][payload]
 *
 *   source                                   target
 *     listens (host's channel address, port 0), token T
 *     ---- prepare {stream: host, port, T} over NATS --->
 *                                   <--- connect, hello(T)
 *     welcome --->                       (then answers the prepare: stream: true)
 *     pages(seq, count, memory/4096, count × u32 LE page, count × 4096 bytes) --->
 *                                   <--- ack(seq), once written into the instance
 *     done --->                          (the last round is in; the commit goes over NATS)
 *                                   <--- error(message), then close, on a bad frame
 *
 * The source listens for one connection only, takes it only with the token it
 * sent in the prepare, and closes the listener then. Every frame the target
 * reads is checked (type, lengths, at most STREAM_WINDOW in flight, page
 * numbers and memory size within wasm32's 4 GiB); a bad one, or a stream that
 * closes before `done`, ends the migration on the target, and fails the
 * source's step in progress (the source resumes: one owner). A target that
 * cannot connect answers the prepare without the stream: the pages then go as
 * NATS apply steps.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, type Server, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { FlurryError, FrameReader } from '@flurry/core';
import { PAGE_SIZE } from '@flurry/core/basics';
import { listenTcp } from '../tcp-listener.js';

export const StreamFrame = { hello: 1, welcome: 2, pages: 3, ack: 4, error: 5, done: 6 } as const;

/** Pages a frame carries at most (1 MiB of page bytes). */
export const STREAM_SLOT_PAGES = 256;
/** Frames in flight at once (sent, not yet acknowledged): the target holds a slot for each. */
export const STREAM_WINDOW = 4;
/** Bytes the target reads from the socket at once, into the one buffer it reuses. */
const READ_BYTES = 256 * 1024;
/** The head of every frame (length, type, id) and a pages frame's own (count, memory size in pages). */
const HEAD = 9;
const PAGES_HEAD = 8;
/** The longest error message a frame carries. */
const MAX_MESSAGE = 4096;
/** wasm32: 4 GiB at most. */
const MAX_MEMORY_BYTES = 2 ** 32;
const MAX_PAGES = MAX_MEMORY_BYTES / PAGE_SIZE;
/** A connection that has not said the token by then is closed; the target gives up connecting by then too. */
export const STREAM_CONNECT_MS = 3000;
const LITTLE_ENDIAN = endianness() === 'LE';

/** What the prepare step tells the target: where to connect, and the token to say. */
export interface StreamOffer {
  host: string;
  port: number;
  token: Uint8Array;
}

function head(type: number, id: number, payloadBytes: number, extra = 0): Buffer {
  const out = Buffer.allocUnsafe(HEAD + extra);
  out.writeUInt32BE(5 + payloadBytes, 0);
  out[4] = type;
  out.writeUInt32BE(id >>> 0, 5);
  return out;
}

function frame(type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = head(type, id, payload.length, payload.length);
  out.set(payload, HEAD);
  return out;
}

// ---------------------------------------------------------------------------
// Source side

/** The source's listener for one migration's stream: one connection, with the token. */
export class PageStreamListener {
  private readonly token = randomBytes(32);
  private accepted: Promise<PageStreamSender>;
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly offer: StreamOffer,
    private readonly peer: string,
  ) {
    this.accepted = new Promise<PageStreamSender>((resolve, reject) => {
      server.on('connection', (socket) => this.accept(socket, resolve));
      server.on('close', () => reject(new FlurryError('unavailable', 'the page stream listener closed before the target connected')));
    });
    this.accepted.catch(() => undefined);
  }

  /**
   * Listens on `listen.host` (any free port); the target is told `advertise` (else the listen address, or this
   * machine's name for a wildcard). `peer` names the target in the stream's errors.
   */
  static async open(listen: { host: string; advertise?: string }, peer = 'the target'): Promise<PageStreamListener> {
    const { server, address } = await listenTcp(listen);
    server.on('error', () => undefined);
    const listener = new PageStreamListener(server, { ...address, token: new Uint8Array(0) }, peer);
    listener.offer.token = listener.token;
    return listener;
  }

  /** The target's connection, once it said the token (rejects when the listener closes first). */
  connected(): Promise<PageStreamSender> {
    return this.accepted;
  }

  /** Stops listening (a connection taken stays open). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
  }

  private accept(socket: Socket, resolve: (s: PageStreamSender) => void): void {
    socket.on('error', () => undefined);
    const reader = new FrameReader(HEAD + MAX_MESSAGE);
    const hello = setTimeout(() => socket.destroy(), STREAM_CONNECT_MS);
    hello.unref();
    const onData = (chunk: Buffer) => {
      try {
        const frames = reader.push(chunk);
        if (frames.length === 0) return;
        const f = frames[0]!;
        if (frames.length > 1 || f.type !== StreamFrame.hello || f.payload.length !== this.token.length || !timingSafeEqual(f.payload, this.token) || this.closed) throw new Error('no valid token');
        clearTimeout(hello);
        socket.off('data', onData);
        this.close();
        socket.write(frame(StreamFrame.welcome, 0));
        resolve(new PageStreamSender(socket, this.peer));
      } catch {
        clearTimeout(hello);
        socket.destroy();
      }
    };
    socket.on('data', onData);
  }
}

/** The source's end of a stream: pages frames out, acks in. */
export class PageStreamSender {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private broken: FlurryError | undefined;
  private readonly reader = new FrameReader(HEAD + MAX_MESSAGE);

  constructor(
    private readonly socket: Socket,
    private readonly peer = 'the target',
  ) {
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.reader.push(chunk)) {
          if (f.type === StreamFrame.ack) {
            const p = this.pending.get(f.id);
            if (!p) throw new Error(`an ack of frame ${f.id}, which is not in flight`);
            this.pending.delete(f.id);
            p.resolve();
          } else if (f.type === StreamFrame.error) {
            throw new Error(`it refused a frame: ${Buffer.from(f.payload.subarray(0, MAX_MESSAGE)).toString('utf8')}`);
          } else throw new Error(`a frame of type ${f.type} from the target`);
        }
      } catch (err) {
        this.fail((err as Error).message);
      }
    });
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.fail('the connection closed'));
  }

  /** Frames sent and not acknowledged. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Pages frames sent in all: the commit tells the target to have them all before it takes the instance. */
  get sent(): number {
    return this.seq;
  }

  /**
   * Sends pages (PAGE_SIZE bytes each, at most STREAM_SLOT_PAGES) and resolves once the target wrote them into the
   * instance. The caller keeps at most STREAM_WINDOW in flight, and `bytes` unchanged until then (written from it).
   */
  send(pages: Uint32Array, bytes: Uint8Array, memoryBytes: number): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const count = pages.length;
    if (count > STREAM_SLOT_PAGES || bytes.length !== count * PAGE_SIZE || memoryBytes % PAGE_SIZE !== 0 || memoryBytes > MAX_MEMORY_BYTES) {
      return Promise.reject(new FlurryError('internal', `a page stream frame of ${count} pages, ${bytes.length} bytes and a memory of ${memoryBytes} bytes cannot be sent`));
    }
    if (this.pending.size >= STREAM_WINDOW) return Promise.reject(new FlurryError('internal', `more than ${STREAM_WINDOW} page stream frames in flight`));
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const h = head(StreamFrame.pages, seq, PAGES_HEAD + count * (4 + PAGE_SIZE), PAGES_HEAD);
    h.writeUInt32BE(count, HEAD);
    h.writeUInt32BE(memoryBytes / PAGE_SIZE, HEAD + 4);
    let index: Uint8Array;
    if (LITTLE_ENDIAN) index = new Uint8Array(pages.buffer, pages.byteOffset, count * 4);
    else {
      const b = Buffer.allocUnsafe(count * 4);
      for (let i = 0; i < count; i++) b.writeUInt32LE(pages[i]!, i * 4);
      index = b;
    }
    const acked = new Promise<void>((resolve, reject) => this.pending.set(seq, { resolve, reject }));
    this.socket.cork();
    this.socket.write(h);
    if (count > 0) {
      this.socket.write(index);
      this.socket.write(bytes);
    }
    this.socket.uncork();
    return acked;
  }

  /**
   * No more frames: the target no longer takes the stream's end for a failure, nor acknowledges what is still in
   * flight (the commit, which names the frames sent, waits on the target for them instead).
   */
  finish(): void {
    if (this.broken) return;
    this.broken = new FlurryError('internal', 'the page stream was finished');
    this.socket.end(frame(StreamFrame.done, 0));
  }

  /** Drops the connection (a failed or aborted migration: the target ends it too). */
  close(): void {
    this.fail('the source closed it');
  }

  private fail(why: string): void {
    if (!this.broken) this.broken = new FlurryError('unavailable', `the page stream to ${this.peer} broke: ${why}`);
    for (const p of this.pending.values()) p.reject(this.broken);
    this.pending.clear();
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------
// Target side

interface Slot {
  /** Page numbers (native order, checked) and their bytes: views of one SharedArrayBuffer that the guest thread reads. */
  pages: Uint32Array;
  index: Uint8Array;
  bytes: Uint8Array;
  busy: boolean;
}

export interface PageStreamReaderOptions {
  /** Writes a frame's pages into the instance; the slot is reused once it resolves. */
  apply: (pages: Uint32Array, bytes: Uint8Array, memoryBytes: number) => Promise<void>;
  /** The stream failed (a bad frame, a write that failed, a close before `done`): called once. */
  broken: (reason: string) => void;
}

/**
 * The target's end: connects to the source, says the token, and writes each pages frame into the instance from
 * slots of a SharedArrayBuffer (STREAM_WINDOW of them), read from one reused buffer.
 */
export class PageStreamReader {
  private readonly slots: Slot[];
  private ended = false;
  private finished = false;
  /** Pages frames read whole and handed to `apply`, and who waits for a count of them (`delivered`). */
  private frames = 0;
  private waiter: { frames: number; resolve: () => void; reject: (err: Error) => void } | undefined;
  private welcomed: ((ok: boolean, why?: string) => void) | undefined;
  // The frame being read.
  private readonly headBuf = Buffer.alloc(HEAD + PAGES_HEAD);
  private headHave = 0;
  private frameLen = 0;
  private frameType = 0;
  private frameId = 0;
  /** Pages frame: its slot, page count, memory size, and how much of its index and bytes arrived. */
  private slot: Slot | undefined;
  private count = 0;
  private memoryBytes = 0;
  private bodyHave = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly opts: PageStreamReaderOptions,
  ) {
    const shared = new SharedArrayBuffer(STREAM_WINDOW * STREAM_SLOT_PAGES * (4 + PAGE_SIZE));
    this.slots = Array.from({ length: STREAM_WINDOW }, (_, i) => {
      const at = i * STREAM_SLOT_PAGES * (4 + PAGE_SIZE);
      return {
        pages: new Uint32Array(shared, at, STREAM_SLOT_PAGES),
        index: new Uint8Array(shared, at, STREAM_SLOT_PAGES * 4),
        bytes: new Uint8Array(shared, at + STREAM_SLOT_PAGES * 4, STREAM_SLOT_PAGES * PAGE_SIZE),
        busy: false,
      };
    });
  }

  /**
   * Connects to `offer` and waits for the source's welcome (at most STREAM_CONNECT_MS); rejects when that fails,
   * and the caller takes the pages over NATS.
   */
  static connect(offer: StreamOffer, opts: PageStreamReaderOptions): Promise<PageStreamReader> {
    return new Promise((resolve, reject) => {
      let reader: PageStreamReader | undefined;
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      const socket = connect({
        host: offer.host, port: offer.port, noDelay: true,
        onread: { buffer, callback: (n: number, buf: Uint8Array) => { reader?.consume(buf, n); return true; } },
      });
      reader = new PageStreamReader(socket, opts);
      const r = reader;
      const timer = setTimeout(() => giveUp(`no welcome from ${offer.host}:${offer.port} within ${STREAM_CONNECT_MS} ms`), STREAM_CONNECT_MS);
      const giveUp = (why: string) => {
        clearTimeout(timer);
        r.welcomed = undefined;
        r.ended = true;
        socket.destroy();
        reject(new FlurryError('unavailable', `no page stream: ${why}`));
      };
      r.welcomed = (ok, why) => {
        clearTimeout(timer);
        r.welcomed = undefined;
        if (ok) resolve(r);
        else giveUp(why ?? 'the source did not welcome it');
      };
      socket.on('connect', () => socket.write(frame(StreamFrame.hello, 0, offer.token)));
      socket.on('error', (err) => (r.welcomed ? giveUp(err.message) : r.fail(err.message, false)));
      socket.on('close', () => (r.welcomed ? giveUp('the connection closed') : r.finished ? undefined : r.fail('the connection closed before the last round was in', false)));
    });
  }

  /** Closes the connection; no failure is reported from then on. */
  close(): void {
    this.ended = true;
    this.socket.destroy();
    this.settleWaiter(new Error('the page stream was closed'));
  }

  /**
   * Resolves once `frames` pages frames (all the source sent, as its commit says) have been read and handed to
   * `apply` (queued to be written, not necessarily written yet); rejects when the stream fails or ends with fewer,
   * or more came, or `withinMs` passes first.
   */
  delivered(frames: number, withinMs: number): Promise<void> {
    if (this.waiter) return Promise.reject(new FlurryError('conflict', 'the page stream is waited on already'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.settleWaiter(new Error(`${this.frames} of the ${frames} pages frames the source sent arrived within ${withinMs} ms`)), withinMs);
      this.waiter = {
        frames,
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(new FlurryError('unavailable', `the page stream's last frames: ${err.message}`))),
      };
      this.settleWaiter();
    });
  }

  /** Resolves the waiter when its frames are in, rejects it on `failure`, or when no more can come or too many did. */
  private settleWaiter(failure?: Error): void {
    const w = this.waiter;
    if (!w) return;
    let err = failure;
    if (!err && this.frames > w.frames) err = new Error(`${this.frames} pages frames arrived, the source sent ${w.frames}`);
    if (!err && this.frames < w.frames && (this.finished || this.ended)) err = new Error(`the stream ended after ${this.frames} of the ${w.frames} pages frames the source sent`);
    if (!err && this.frames < w.frames) return;
    this.waiter = undefined;
    if (err) w.reject(err);
    else w.resolve();
  }

  private fail(reason: string, tell = true): void {
    if (this.ended) return;
    // Before the welcome: the connection is not had (the pages then come over NATS).
    if (this.welcomed) return this.welcomed(false, reason);
    this.ended = true;
    this.settleWaiter(new Error(reason));
    if (tell && !this.socket.destroyed) this.socket.end(frame(StreamFrame.error, 0, Buffer.from(reason.slice(0, 1000))));
    else this.socket.destroy();
    // A peer that does not close after the error frame is cut off.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.opts.broken(reason);
  }

  /** Takes `n` bytes just read into `buf` (the reused read buffer): copies them where their frame goes. */
  private consume(buf: Uint8Array, n: number): void {
    let at = 0;
    try {
      while (at < n && !this.ended) {
        if (this.headHave < HEAD) {
          const take = Math.min(HEAD - this.headHave, n - at);
          this.headBuf.set(buf.subarray(at, at + take), this.headHave);
          this.headHave += take;
          at += take;
          if (this.headHave >= 4 && this.headBuf.readUInt32BE(0) < 5) throw new Error(`a frame of ${this.headBuf.readUInt32BE(0)} bytes`);
          if (this.headHave < HEAD) break;
          this.frameLen = this.headBuf.readUInt32BE(0);
          this.frameType = this.headBuf[4]!;
          this.frameId = this.headBuf.readUInt32BE(5);
          if (this.frameType === StreamFrame.pages) {
            if (this.frameLen < 5 + PAGES_HEAD) throw new Error(`a pages frame of ${this.frameLen} bytes`);
          } else if (this.frameType === StreamFrame.welcome || this.frameType === StreamFrame.done) {
            if (this.frameLen !== 5) throw new Error(`a frame of type ${this.frameType} with a payload`);
          } else throw new Error(`a frame of type ${this.frameType} from the source`);
          if (this.frameType !== StreamFrame.welcome && this.welcomed) throw new Error('a frame before the welcome');
          if (this.frameType === StreamFrame.welcome && !this.welcomed) throw new Error('a second welcome');
          if (this.frameType !== StreamFrame.pages) {
            this.headHave = 0;
            if (this.frameType === StreamFrame.welcome) this.welcomed?.(true);
            else {
              this.finished = true;
              this.settleWaiter();
            }
            continue;
          }
        }
        if (this.headHave < HEAD + PAGES_HEAD) {
          const take = Math.min(HEAD + PAGES_HEAD - this.headHave, n - at);
          this.headBuf.set(buf.subarray(at, at + take), this.headHave);
          this.headHave += take;
          at += take;
          if (this.headHave < HEAD + PAGES_HEAD) break;
          this.startPages();
          // A frame of no pages is whole with its head.
          if (!this.slot) continue;
        }
        const slot = this.slot!;
        const indexBytes = this.count * 4;
        const total = indexBytes + this.count * PAGE_SIZE;
        const take = Math.min(total - this.bodyHave, n - at);
        const from = buf.subarray(at, at + take);
        if (this.bodyHave < indexBytes) {
          const toIndex = Math.min(take, indexBytes - this.bodyHave);
          slot.index.set(from.subarray(0, toIndex), this.bodyHave);
          if (take > toIndex) slot.bytes.set(from.subarray(toIndex), 0);
        } else slot.bytes.set(from, this.bodyHave - indexBytes);
        this.bodyHave += take;
        at += take;
        if (this.bodyHave === total) this.deliver();
      }
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  private startPages(): void {
    this.count = this.headBuf.readUInt32BE(HEAD);
    const memoryPages = this.headBuf.readUInt32BE(HEAD + 4);
    if (this.count > STREAM_SLOT_PAGES) throw new Error(`a pages frame of ${this.count} pages (at most ${STREAM_SLOT_PAGES})`);
    if (this.frameLen !== 5 + PAGES_HEAD + this.count * (4 + PAGE_SIZE)) throw new Error(`a pages frame of ${this.count} pages in ${this.frameLen} bytes`);
    if (memoryPages > MAX_PAGES) throw new Error(`a memory of ${memoryPages} pages (wasm32: at most ${MAX_PAGES})`);
    this.memoryBytes = memoryPages * PAGE_SIZE;
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) throw new Error(`more than ${STREAM_WINDOW} pages frames in flight`);
    slot.busy = true;
    this.slot = slot;
    this.bodyHave = 0;
    if (this.count === 0) this.deliver();
  }

  /** A whole pages frame: its page numbers checked, then written into the instance, then acknowledged. */
  private deliver(): void {
    const slot = this.slot!;
    const count = this.count;
    const id = this.frameId;
    this.slot = undefined;
    this.headHave = 0;
    const view = new DataView(slot.index.buffer, slot.index.byteOffset, count * 4);
    for (let i = 0; i < count; i++) {
      const p = view.getUint32(i * 4, true);
      if (p >= MAX_PAGES) throw new Error(`page ${p} is beyond wasm32's ${MAX_PAGES} pages`);
      slot.pages[i] = p;
    }
    this.opts.apply(slot.pages.subarray(0, count), slot.bytes.subarray(0, count * PAGE_SIZE), this.memoryBytes).then(
      () => {
        slot.busy = false;
        // After `done` the source waits for no ack (and may have closed its side): its commit counts the frames.
        if (!this.ended && !this.finished) this.socket.write(head(StreamFrame.ack, id, 0));
      },
      (err: unknown) => this.fail(`its pages could not be written: ${(err as Error).message}`),
    );
    this.frames++;
    this.settleWaiter();
  }
}
