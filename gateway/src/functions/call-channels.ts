/**
 * The gateway's direct call channels (core/src/call-frames.ts): one TCP
 * connection to each host holding functions warm, so that a call skips the
 * broker's two hops. A channel is opened with a fresh random token sent to
 * the host over NATS (`openCalls`: only the gateway may publish it, and the
 * reply comes to its own inbox), and the host must then say its id. Calls go
 * to the least busy open channel of a host holding the version warm and not
 * draining; without one, through the queue group as before (channels open in
 * the background). A channel that closes fails its calls in flight with
 * ChannelClosed: the invoker sends them again through the queue group.
 *
 * Beside the host's own connection, a channel holds one connection to each of
 * the host's call threads that read their own calls (OpenCallsReply.threadPorts,
 * the same token): a call goes to the thread connection with the fewest calls
 * in flight that has not said `busy`, any number of calls in flight on each
 * (the thread reads them in turn, and none waits for the gateway to hear the
 * last answer first), and to the host's own connection only when no thread
 * connection is usable. When a thread connection closes (its thread was
 * replaced: a timeout, a crash), its calls fail with ChannelClosed and the
 * channel asks the host again with the same token for its threads' ports,
 * connecting to those it does not hold, a bounded number of times.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import {
  call, CALL_FRAME_OVERHEAD, CallFailed, channelFrameLimit, EarliestDeadline, encodeCallFrame, encodeFrame, maxPayload, FrameReader, FrameType, Subjects, writeFrame,
  type Fabric, type Frame, type FunctionRecord, type HostRecord, type Logger,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';

/** A host whose channel failed to open or closed is not tried again for this long. */
const RETRY_AFTER_MS = 1000;
/** A host that has not said its id by then is not one. */
const WELCOME_TIMEOUT_MS = 5000;
/** After a thread connection closed, the host is asked again for its threads' ports after this, doubled each time… */
const THREADS_RETRY_FIRST_MS = 100;
/** …this many times at most (about 6 s in all: a replacement thread boots in 0.1–0.4 s), until all are connected again. */
const THREADS_RETRIES = 6;

/** The channel closed before the call's answer came: the call may be sent again elsewhere. */
export class ChannelClosed extends Error {}

interface Waiting {
  resolve(reply: Uint8Array | undefined): void;
  reject(err: unknown): void;
  /** When it times out (performance.now()). */
  deadline: number;
  /** The connection it went on. */
  via: Connection;
}

/** One connection of a channel: the host's own, or one of its call threads'. */
interface Connection {
  socket: Socket;
  /** Calls in flight on it. */
  inFlight: number;
  /** A thread that said `busy` (and not `free` since): it would decline. */
  busy: boolean;
  /** A thread's port; undefined for the host's own connection. */
  port?: number;
}

/** A channel's thread connection, as CallChannels wires it: its frames to `frame`, its close to `closed`. */
export interface ThreadLink {
  readonly port: number;
  /** A frame from the thread after its welcome. Returns false for one that is not the protocol. */
  frame(frame: Frame): boolean;
  /** Its socket closed: its calls in flight fail with ChannelClosed. */
  closed(): void;
}

/** One open channel to one host incarnation. */
export class CallChannel {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  /** One timer for every call in flight on it, not one per call. */
  private readonly deadlines = new EarliestDeadline((now) => this.expire(now));
  /** Set once its socket closed: a call then fails at once (no timer would end it). */
  private closedWhy: string | undefined;
  private readonly own: Connection;
  /** Connections to the host's call threads, by port. */
  private readonly threads = new Map<number, Connection>();
  /** Told when a thread connection closed (CallChannels asks the host for its threads again). */
  onThreadLost: (() => void) | undefined;

  constructor(
    readonly hostId: string,
    /** The incarnation it was opened to: a host restarted under the same id gets a new channel. */
    readonly startedAt: number,
    socket: Socket,
    /** The largest frame the host takes. */
    private readonly maxFrameBytes: number,
  ) {
    this.own = { socket, inFlight: 0, busy: false };
  }

  /** The ports of the thread connections it holds. */
  threadPorts(): number[] {
    return [...this.threads.keys()];
  }

  /** Whether it is closed (its host connection closed). */
  get isClosed(): boolean {
    return this.closedWhy !== undefined;
  }

  /** Adds a connection to one of the host's call threads (welcomed); frames and the close come through the link. */
  addThread(socket: Socket, port: number): ThreadLink {
    const conn: Connection = { socket, inFlight: 0, busy: false, port };
    if (this.closedWhy !== undefined) socket.destroy();
    else this.threads.set(port, conn);
    return {
      port,
      frame: (frame) => {
        if (frame.type === FrameType.busy || frame.type === FrameType.free) {
          conn.busy = frame.type === FrameType.busy;
          return frame.id === 0 && frame.payload.length === 0;
        }
        return this.answer(frame, conn);
      },
      closed: () => {
        if (this.threads.get(port) !== conn) return;
        this.threads.delete(port);
        this.failOn(conn, 'its thread connection closed');
        if (this.closedWhy === undefined) this.onThreadLost?.();
      },
    };
  }

  /** Where the next call goes: the thread connection with the fewest calls in flight that is not busy, else the host's own. */
  private route(): Connection {
    let best: Connection | undefined;
    for (const t of this.threads.values()) {
      if (!t.busy && !t.socket.destroyed && (!best || t.inFlight < best.inFlight)) best = t;
    }
    return best ?? this.own;
  }

  /** Whether a call of `requestBytes` fits a frame the host takes (else it goes through the broker, which refuses it as too large). */
  fits(requestBytes: number): boolean {
    return requestBytes + CALL_FRAME_OVERHEAD <= this.maxFrameBytes;
  }

  /** Calls in flight on it. */
  get load(): number {
    return this.waiting.size;
  }

  /**
   * Sends an encoded InvokeRequest; resolves with the encoded InvokeReply, or
   * undefined when the host declined it. Rejects with ChannelClosed, or
   * CallFailed('timeout') after `timeoutMs`.
   */
  call(request: Uint8Array, traceparent: string, timeoutMs: number): Promise<Uint8Array | undefined> {
    if (this.closedWhy !== undefined) return Promise.reject(this.closedError(this.closedWhy));
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      const via = this.route();
      via.inFlight++;
      this.waiting.set(id, { resolve, reject, deadline, via });
      this.deadlines.require(deadline);
      writeFrame(via.socket, encodeCallFrame(id, traceparent, request));
    });
  }

  /** Fails the calls whose time is up; answers the earliest deadline left. */
  private expire(now: number): number | undefined {
    let next: number | undefined;
    for (const [id, w] of this.waiting) {
      if (w.deadline <= now) {
        this.waiting.delete(id);
        w.via.inFlight--;
        w.reject(new CallFailed('timeout', `call channel to ${this.hostId}`, undefined));
      } else if (next === undefined || w.deadline < next) next = w.deadline;
    }
    return next;
  }

  /** A frame from the host after its welcome (on `via`: its own connection by default). Returns false for one that is not the protocol. */
  answer(frame: Frame, via: Connection = this.own): boolean {
    if (frame.type !== FrameType.reply && frame.type !== FrameType.declined) return false;
    const w = this.waiting.get(frame.id);
    // Answered after its timeout: dropped. An answer on another connection than the call's is not the protocol.
    if (!w) return true;
    if (w.via !== via) return false;
    this.waiting.delete(frame.id);
    via.inFlight--;
    w.resolve(frame.type === FrameType.reply ? frame.payload : undefined);
    return true;
  }

  /** Fails the calls in flight on one connection (it closed). */
  private failOn(conn: Connection, why: string): void {
    for (const [id, w] of this.waiting) {
      if (w.via !== conn) continue;
      this.waiting.delete(id);
      w.reject(this.closedError(why));
    }
    conn.inFlight = 0;
  }

  /** Fails every call in flight (the host's socket closed) and closes its thread connections. */
  failAll(why: string): void {
    this.closedWhy = why;
    this.deadlines.stop();
    for (const w of this.waiting.values()) w.reject(this.closedError(why));
    this.waiting.clear();
    for (const t of this.threads.values()) t.socket.destroy();
    this.threads.clear();
  }

  private closedError(why: string): ChannelClosed {
    return new ChannelClosed(`the call channel to ${this.hostId} closed: ${why}`);
  }

  close(): void {
    this.own.socket.destroy();
    for (const t of this.threads.values()) t.socket.destroy();
  }
}

export class CallChannels {
  private readonly open = new Map<string, CallChannel>();
  /** Hosts being connected to, or not to be tried before the time given. */
  private readonly notBefore = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly log: Logger,
  ) {}

  /**
   * The least busy open channel to a live, non-draining host holding `fn`
   * warm; undefined when there is none yet (channels to such hosts are
   * opened meanwhile).
   */
  pick(fn: FunctionRecord): CallChannel | undefined {
    if (this.closed) return undefined;
    const now = Date.now();
    let best: CallChannel | undefined;
    for (const h of this.fleet.liveWarm(fn, now)) {
      if (h.draining) continue;
      const c = this.open.get(h.id);
      if (c?.startedAt === h.startedAt) {
        if (!best || c.load < best.load) best = c;
      } else if ((this.notBefore.get(h.id) ?? 0) <= now) {
        c?.close();
        void this.connect(h);
      }
    }
    return best;
  }

  /** Closes every channel: their calls in flight go through the queue group. */
  close(): void {
    this.closed = true;
    for (const c of this.open.values()) c.close();
  }

  private async connect(h: HostRecord): Promise<void> {
    this.notBefore.set(h.id, Number.POSITIVE_INFINITY);
    try {
      const token = randomBytes(32);
      const reply = await call(this.fabric.nc, 'openCalls', Subjects.openCalls(h.id), { token });
      if (!reply.ok) throw new Error(reply.error.message);
      if (reply.hostId !== h.id) throw new Error(`${reply.hostId} answered for ${h.id}`);
      const channel = await this.welcomed(h, reply.host, reply.port, token);
      if (this.closed) return channel.close();
      this.open.set(h.id, channel);
      this.notBefore.delete(h.id);
      if (reply.threadPorts && reply.threadPorts.length > 0) {
        // As many as the host has call threads (some may be starting, not named yet).
        const threads = { host: reply.host, token, expected: Math.max(reply.threadPorts.length, h.guestSlots), retrying: false };
        channel.onThreadLost = () => void this.refreshThreads(h, channel, threads);
        await this.connectThreads(h, channel, threads.host, token, reply.threadPorts);
        if (channel.threadPorts().length < threads.expected) channel.onThreadLost();
      }
    } catch (err) {
      this.notBefore.set(h.id, Date.now() + RETRY_AFTER_MS);
      this.log.debug({ hostId: h.id, err: (err as Error).message }, 'no call channel to the host: its calls go through the broker');
    }
  }

  /** Connects to each thread port the channel does not hold yet; a port that fails is left (the next ask names it again). */
  private async connectThreads(h: HostRecord, channel: CallChannel, host: string, token: Uint8Array, ports: readonly number[]): Promise<void> {
    const held = new Set(channel.threadPorts());
    await Promise.all(ports.filter((p) => !held.has(p)).map(async (port) => {
      try {
        await this.welcomed(h, host, port, token, channel);
      } catch (err) {
        this.log.debug({ hostId: h.id, port, err: (err as Error).message }, 'no connection to a call thread: its calls go to the host');
      }
    }));
  }

  /**
   * A thread connection closed (its thread was replaced): asks the host again with the same token for its threads'
   * ports and connects to those not held, after THREADS_RETRY_FIRST_MS, doubling, until as many are held as the
   * first grant named or THREADS_RETRIES asks were made. One such loop per channel at a time.
   */
  private async refreshThreads(h: HostRecord, channel: CallChannel, threads: { host: string; token: Uint8Array; expected: number; retrying: boolean }): Promise<void> {
    if (threads.retrying) return;
    threads.retrying = true;
    try {
      for (let attempt = 0, wait = THREADS_RETRY_FIRST_MS; attempt < THREADS_RETRIES; attempt++, wait *= 2) {
        await new Promise((r) => setTimeout(r, wait).unref());
        if (this.closed || channel.isClosed || this.open.get(h.id) !== channel) return;
        try {
          const reply = await call(this.fabric.nc, 'openCalls', Subjects.openCalls(h.id), { token: threads.token });
          if (!reply.ok || reply.hostId !== h.id) return;
          await this.connectThreads(h, channel, threads.host, threads.token, reply.threadPorts ?? []);
        } catch (err) {
          this.log.debug({ hostId: h.id, err: (err as Error).message }, 'asking a host for its call threads again failed');
        }
        if (channel.threadPorts().length >= threads.expected) return;
      }
    } finally {
      threads.retrying = false;
    }
  }

  /**
   * Connects, says the token, and resolves once the host has said its id: the host's own connection (a new
   * channel), or with `to`, one of its call threads' (added to that channel).
   */
  private welcomed(h: HostRecord, host: string, port: number, token: Uint8Array): Promise<CallChannel>;
  private welcomed(h: HostRecord, host: string, port: number, token: Uint8Array, to: CallChannel): Promise<CallChannel>;
  private welcomed(h: HostRecord, host: string, port: number, token: Uint8Array, to?: CallChannel): Promise<CallChannel> {
    const maxFrameBytes = channelFrameLimit(maxPayload(this.fabric.nc));
    const reader = new FrameReader(maxFrameBytes);
    const socket = connect({ host, port, noDelay: true });
    const channel = to ?? new CallChannel(h.id, h.startedAt, socket, maxFrameBytes);
    let link: ThreadLink | undefined;
    return new Promise((resolve, reject) => {
      let welcome = false;
      const timer = setTimeout(() => socket.destroy(new Error('no welcome in time')), WELCOME_TIMEOUT_MS);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        if (!welcome) return reject(new Error(`${host}:${port} closed before its welcome`));
        if (link) return link.closed();
        channel.failAll('closed');
        if (this.open.get(h.id) === channel) {
          this.open.delete(h.id);
          this.notBefore.set(h.id, Date.now() + RETRY_AFTER_MS);
        }
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const frame of reader.push(chunk)) {
            if (welcome) {
              if (!(link ? link.frame(frame) : channel.answer(frame))) throw new Error(`a frame of type ${frame.type}`);
            } else if (frame.type === FrameType.welcome && Buffer.from(frame.payload).toString() === h.id) {
              welcome = true;
              clearTimeout(timer);
              if (to) link = to.addThread(socket, port);
              resolve(channel);
            } else throw new Error('not the host asked for');
          }
        } catch (err) {
          this.log.warn({ hostId: h.id, err: (err as Error).message }, 'call channel closed: not the protocol');
          socket.destroy();
        }
      });
      socket.write(encodeFrame(FrameType.hello, 0, token));
    });
  }
}
