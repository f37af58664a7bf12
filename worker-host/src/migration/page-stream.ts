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
 *     pages(...) --->                    (the pause's last pages: the last ones not waited for)
 *     commit(msgpack commit step) --->   (behind every pages frame: read after them)
 *                                   <--- answer(msgpack step reply), then close
 *                                   <--- error(message), then close, on a bad frame
 *
 * The source listens for one connection only, takes it only with the token it
 * sent in the prepare, and closes the listener then. Every frame the target
 * reads is checked (type, lengths, at most STREAM_WINDOW in flight, page
 * numbers and memory size within wasm32's 4 GiB, a commit of at most
 * MAX_COMMIT_BYTES and nothing after it); a bad one, or a stream that closes
 * before the commit, ends the migration on the target, and fails the source's
 * step in progress (the source resumes: one owner). The commit is the NATS
 * commit step on a shorter way (no broker hop either way, in the pause): it is
 * checked and answered as that one is, and a stream that breaks after it was
 * sent leaves its outcome unknown, which the source asks over NATS (`status`)
 * as for a lost NATS answer. A target that cannot connect answers the prepare
 * without the stream: the pages and the commit then go as NATS steps.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, type Server, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { FlurryError, FrameReader } from '@flurry/core';
import { PAGE_SIZE } from '@flurry/core/basics';
import { listenTcp } from '../tcp-listener.js';

export const StreamFrame = { hello: 1, welcome: 2, pages: 3, ack: 4, error: 5, commit: 7, answer: 8 } as const;

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
/** A commit frame's payload at most (the commit step: globals and kept replies, as over NATS), and its answer's. */
export const MAX_COMMIT_BYTES = 1024 * 1024;
const MAX_ANSWER_BYTES = 64 * 1024;
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

/** The source's end of a stream: pages frames and the commit out, acks and the commit's answer in. */
export class PageStreamSender {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  /** The commit sent, waiting for its answer. */
  private committing: { resolve: (answer: Uint8Array) => void; reject: (err: Error) => void } | undefined;
  private broken: FlurryError | undefined;
  private readonly reader = new FrameReader(HEAD + MAX_ANSWER_BYTES);

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
          } else if (f.type === StreamFrame.answer && this.committing) {
            const c = this.committing;
            this.committing = undefined;
            this.broken = new FlurryError('internal', 'the page stream was committed');
            c.resolve(f.payload);
            this.socket.end();
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
   * Sends the commit step (encoded) behind every pages frame sent, the last ones maybe not acknowledged yet (the
   * target reads them first, on this one connection, and acknowledges none after the commit); resolves to the
   * target's answer (encoded). Throws at once, sent to nobody, when the stream is broken already; a stream that
   * breaks after the commit is written rejects, its outcome unknown.
   */
  commit(step: Uint8Array): Promise<Uint8Array> {
    if (this.broken) throw this.broken;
    if (step.length > MAX_COMMIT_BYTES) throw new FlurryError('internal', `a commit of ${step.length} bytes cannot go on the page stream (at most ${MAX_COMMIT_BYTES})`);
    const answered = new Promise<Uint8Array>((resolve, reject) => (this.committing = { resolve, reject }));
    this.socket.write(frame(StreamFrame.commit, 0, step));
    return answered;
  }

  /** Drops the connection (a failed or aborted migration: the target ends it too). */
  close(): void {
    this.fail('the source closed it');
  }

  private fail(why: string): void {
    if (!this.broken) this.broken = new FlurryError('unavailable', `the page stream to ${this.peer} broke: ${why}`);
    for (const p of this.pending.values()) p.reject(this.broken);
    this.pending.clear();
    this.committing?.reject(this.broken);
    this.committing = undefined;
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
  /**
   * The commit step (encoded), read behind every pages frame (each handed to `apply` already): resolves to the
   * answer (encoded) to send back, after which the stream ends.
   */
  commit: (step: Uint8Array) => Promise<Uint8Array>;
  /** The stream failed before the commit (a bad frame, a write that failed, a close): called once. */
  broken: (reason: string) => void;
}

/**
 * The target's end: connects to the source, says the token, and writes each pages frame into the instance from
 * slots of a SharedArrayBuffer (STREAM_WINDOW of them), read from one reused buffer.
 */
export class PageStreamReader {
  private readonly slots: Slot[];
  private ended = false;
  /** The commit arrived: nothing more comes, and the commit's answer says how the migration ended. */
  private committed = false;
  /** Its answer is being made: a close waits for it to be sent. */
  private answering = false;
  /** A commit frame's payload as it arrives. */
  private commitBuf: Buffer | undefined;
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
      socket.on('close', () => (r.welcomed ? giveUp('the connection closed') : r.fail('the connection closed before the commit', false)));
    });
  }

  /** Closes the connection (once the commit's answer, if one is being made, is sent); no failure is reported from then on. */
  close(): void {
    this.ended = true;
    if (!this.answering) this.socket.destroy();
  }

  private fail(reason: string, tell = true): void {
    if (this.ended) return;
    // Before the welcome: the connection is not had (the pages then come over NATS).
    if (this.welcomed) return this.welcomed(false, reason);
    this.ended = true;
    // After the commit arrived the commit decides (a write still under way that fails fails its last step).
    if (this.committed) return void this.socket.destroy();
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
          if (this.committed) throw new Error('a frame after the commit');
          if (this.frameType === StreamFrame.pages) {
            if (this.frameLen < 5 + PAGES_HEAD) throw new Error(`a pages frame of ${this.frameLen} bytes`);
          } else if (this.frameType === StreamFrame.welcome) {
            if (this.frameLen !== 5) throw new Error(`a frame of type ${this.frameType} with a payload`);
          } else if (this.frameType === StreamFrame.commit) {
            if (this.frameLen === 5 || this.frameLen - 5 > MAX_COMMIT_BYTES) throw new Error(`a commit of ${this.frameLen - 5} bytes (1 to ${MAX_COMMIT_BYTES})`);
          } else throw new Error(`a frame of type ${this.frameType} from the source`);
          if (this.frameType !== StreamFrame.welcome && this.welcomed) throw new Error('a frame before the welcome');
          if (this.frameType === StreamFrame.welcome && !this.welcomed) throw new Error('a second welcome');
          if (this.frameType === StreamFrame.welcome) {
            this.headHave = 0;
            this.welcomed?.(true);
            continue;
          }
          if (this.frameType === StreamFrame.commit) {
            this.commitBuf = Buffer.allocUnsafe(this.frameLen - 5);
            this.bodyHave = 0;
          }
        }
        if (this.commitBuf) {
          const take = Math.min(this.commitBuf.length - this.bodyHave, n - at);
          this.commitBuf.set(buf.subarray(at, at + take), this.bodyHave);
          this.bodyHave += take;
          at += take;
          if (this.bodyHave === this.commitBuf.length) this.answerCommit();
          continue;
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

  /** The commit, behind every pages frame: handed to `commit`, whose answer goes back before the stream ends. */
  private answerCommit(): void {
    const step = this.commitBuf!;
    this.commitBuf = undefined;
    this.headHave = 0;
    this.committed = true;
    this.answering = true;
    this.opts.commit(step).then(
      (answer) => {
        this.answering = false;
        if (this.socket.destroyed) return;
        if (answer.length > MAX_ANSWER_BYTES) this.socket.destroy();
        else this.socket.end(frame(StreamFrame.answer, 0, answer));
      },
      () => {
        this.answering = false;
        this.socket.destroy();
      },
    );
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
        // After the commit the source waits for no ack: the commit's answer covers every frame before it.
        if (!this.ended && !this.committed) this.socket.write(head(StreamFrame.ack, id, 0));
      },
      (err: unknown) => this.fail(`its pages could not be written: ${(err as Error).message}`),
    );
  }
}
