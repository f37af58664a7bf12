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

/** The channel closed before the call's answer came: the call may be sent again elsewhere. */
export class ChannelClosed extends Error {}

interface Waiting {
  resolve(reply: Uint8Array | undefined): void;
  reject(err: unknown): void;
  /** When it times out (performance.now()). */
  deadline: number;
}

/** One open channel to one host incarnation. */
export class CallChannel {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  /** One timer for every call in flight on it, not one per call. */
  private readonly deadlines = new EarliestDeadline((now) => this.expire(now));
  /** Set once its socket closed: a call then fails at once (no timer would end it). */
  private closedWhy: string | undefined;

  constructor(
    readonly hostId: string,
    /** The incarnation it was opened to: a host restarted under the same id gets a new channel. */
    readonly startedAt: number,
    private readonly socket: Socket,
    /** The largest frame the host takes. */
    private readonly maxFrameBytes: number,
  ) {}

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
      this.waiting.set(id, { resolve, reject, deadline });
      this.deadlines.require(deadline);
      writeFrame(this.socket, encodeCallFrame(id, traceparent, request));
    });
  }

  /** Fails the calls whose time is up; answers the earliest deadline left. */
  private expire(now: number): number | undefined {
    let next: number | undefined;
    for (const [id, w] of this.waiting) {
      if (w.deadline <= now) {
        this.waiting.delete(id);
        w.reject(new CallFailed('timeout', `call channel to ${this.hostId}`, undefined));
      } else if (next === undefined || w.deadline < next) next = w.deadline;
    }
    return next;
  }

  /** A frame from the host after its welcome. Returns false for one that is not the protocol. */
  answer(frame: Frame): boolean {
    if (frame.type !== FrameType.reply && frame.type !== FrameType.declined) return false;
    const w = this.waiting.get(frame.id);
    // Answered after its timeout: dropped.
    if (!w) return true;
    this.waiting.delete(frame.id);
    w.resolve(frame.type === FrameType.reply ? frame.payload : undefined);
    return true;
  }

  /** Fails every call in flight (the socket closed). */
  failAll(why: string): void {
    this.closedWhy = why;
    this.deadlines.stop();
    for (const w of this.waiting.values()) w.reject(this.closedError(why));
    this.waiting.clear();
  }

  private closedError(why: string): ChannelClosed {
    return new ChannelClosed(`the call channel to ${this.hostId} closed: ${why}`);
  }

  close(): void {
    this.socket.destroy();
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
    } catch (err) {
      this.notBefore.set(h.id, Date.now() + RETRY_AFTER_MS);
      this.log.debug({ hostId: h.id, err: (err as Error).message }, 'no call channel to the host: its calls go through the broker');
    }
  }

  /** Connects, says the token, and resolves once the host has said its id. */
  private welcomed(h: HostRecord, host: string, port: number, token: Uint8Array): Promise<CallChannel> {
    const maxFrameBytes = channelFrameLimit(maxPayload(this.fabric.nc));
    const reader = new FrameReader(maxFrameBytes);
    const socket = connect({ host, port, noDelay: true });
    const channel = new CallChannel(h.id, h.startedAt, socket, maxFrameBytes);
    return new Promise((resolve, reject) => {
      let welcome = false;
      const timer = setTimeout(() => socket.destroy(new Error('no welcome in time')), WELCOME_TIMEOUT_MS);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        channel.failAll('closed');
        if (!welcome) return reject(new Error(`${host}:${port} closed before its welcome`));
        if (this.open.get(h.id) === channel) {
          this.open.delete(h.id);
          this.notBefore.set(h.id, Date.now() + RETRY_AFTER_MS);
        }
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const frame of reader.push(chunk)) {
            if (welcome) {
              if (!channel.answer(frame)) throw new Error(`a frame of type ${frame.type}`);
            } else if (frame.type === FrameType.welcome && Buffer.from(frame.payload).toString() === h.id) {
              welcome = true;
              clearTimeout(timer);
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
