/**
 * A call thread's own connections (runs in the guest thread): the thread
 * listens on a port of its own, the gateway connects to it with the token it
 * gave the host (the host's grant names the port: OpenCallsReply.threadPorts)
 * and sends calls that the thread reads, runs and answers itself. The host's
 * main thread is then not on a call's way at all: one thread is woken per
 * call instead of three wake-ups (the main thread twice, the guest thread
 * once). See docs/architecture.md, "Call threads that read their own calls".
 *
 * Every frame is untrusted: the first must be `hello` with a token the host
 * granted (its digest in the shared token table), within HELLO_TIMEOUT_MS;
 * frames are bounded in size (FrameReader), and anything but a call after the
 * hello closes the connection. A call is declined (the gateway sends it
 * through the broker, whose host answers or refuses it with the schema's
 * reason) when it is not certainly a well-formed InvokeRequest, names a
 * version this thread does not hold or the host does not serve now (draining,
 * evicted), or when the thread is busy with work from its host (then it said
 * `busy` on its connections) — or when something of the thread's own is still
 * waiting to be written on that socket, as the host's watchdog could not
 * write a timeout answer into it whole.
 *
 * The time limit is the main thread's (thread-call-watchdog.ts): the call's
 * slot holds its start, limit, socket descriptor and frame id; the thread
 * posts `channel-deadline` only when the watchdog is not armed soon enough
 * for this call, so steady calls wake the main thread about once per limit.
 * A call claimed by the watchdog is answered `timeout` by the main thread on
 * this socket, and this thread, once its guest returns (if ever), writes
 * nothing more and waits to be ended.
 */
import { fstatSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { answerCallConnection, CallChecks, decode, encode, encodeFrame, FrameType, splitCallPayload } from '@flurry/core/call-wire';
import type { InvokeReply, InvokeRequest } from '@flurry/core';
import { CLAIMED, cells, epochMs, holdsToken, KEY, POOL, SLOT, tokenDigest, type Cells } from './thread-call-cells.js';
import type { ThreadChannelData } from './thread-messages.js';
import { listenTcp } from '../tcp-listener.js';

/** A connection that has not said its token by then is closed. */
const HELLO_TIMEOUT_MS = 5_000;

/** What the thread runs a call with. */
export interface ThreadCallDeps {
  /** The key's shared cells and id, or undefined when this thread holds no such key. */
  key(key: string): { cells: Cells; id: number } | undefined;
  /** Runs `handle` in a fresh clone (what the guest logged goes to the main thread, with the caller's traceparent); the reply to send. */
  run(key: string, request: InvokeRequest, maxOutputBytes: number | undefined, traceparent: string): InvokeReply;
  /** The thread's answer is out: what it does between messages starts again. */
  after(key: string): void;
  /** Tells the main thread that its watchdog must look sooner. */
  wakeWatchdog(): void;
  /** A call came (the thread's polling window learns how soon after it went idle). */
  arrived(): void;
  /** Whether any of these descriptors has data waiting, without waiting (the native pager's poll); none: it cannot tell. */
  anyReadable?: (fds: Int32Array) => boolean;
}

export class ThreadChannel {
  private readonly sockets = new Set<Socket>();
  private readonly slot: Cells;
  private readonly pool: Cells;
  private busy = false;
  private serial = 0n;
  /** The descriptors of its connections, for readable(). */
  private fds = new Int32Array(0);
  /** Never notified: a thread whose call the watchdog claimed waits here to be ended. */
  private readonly never = new Int32Array(new SharedArrayBuffer(4));

  private constructor(
    private readonly data: ThreadChannelData,
    private readonly deps: ThreadCallDeps,
    private readonly server: Server,
  ) {
    this.slot = cells(data.slot);
    this.pool = cells(data.pool);
  }

  /** Listens on a free port of the channel's host; resolves with the port. */
  static async listen(data: ThreadChannelData, deps: ThreadCallDeps): Promise<{ channel: ThreadChannel; port: number }> {
    const { server, address } = await listenTcp({ host: data.listenHost });
    const channel = new ThreadChannel(data, deps, server);
    server.on('connection', (socket) => channel.accept(socket));
    server.on('error', () => undefined);
    return { channel, port: address.port };
  }

  /** Whether a connection has something to read now (a call, or its close): the thread polls this before it sleeps. */
  readable(): boolean {
    return this.fds.length > 0 && this.deps.anyReadable !== undefined && this.deps.anyReadable(this.fds);
  }

  private connectionsChanged(): void {
    this.fds = Int32Array.from([...this.sockets].flatMap((s) => {
      const fd = socketFd(s);
      return fd === undefined ? [] : [fd];
    }));
  }

  /**
   * The thread takes work from its host (`true`) or is done with it: says `busy` or `free` on every connection, so
   * that the gateway sends its calls elsewhere meanwhile; those that come anyway are declined.
   */
  setBusy(busy: boolean): void {
    if (busy === this.busy) return;
    this.busy = busy;
    const frame = encodeFrame(busy ? FrameType.busy : FrameType.free, 0, new Uint8Array(0));
    for (const s of this.sockets) if (!s.destroyed) s.write(frame);
  }

  private accept(socket: Socket): void {
    let inode = 0n;
    answerCallConnection(socket, {
      maxFrameBytes: this.data.maxFrameBytes, hostId: this.data.hostId, helloTimeoutMs: HELLO_TIMEOUT_MS,
      admits: (token) => holdsToken(this.data.tokens, tokenDigest(token)),
      welcomed: () => {
        inode = socketInode(socket);
        this.sockets.add(socket);
        this.connectionsChanged();
        if (this.busy) socket.write(encodeFrame(FrameType.busy, 0, new Uint8Array(0)));
      },
      call: (id, payload) => this.call(socket, inode, id, payload),
      closed: () => {
        this.sockets.delete(socket);
        this.connectionsChanged();
      },
    });
  }

  private call(socket: Socket, inode: bigint, id: number, payload: Uint8Array): void {
    if (socket.destroyed) return;
    this.deps.arrived();
    const checked = this.busy || socket.writableLength > 0 ? undefined : checkedRequest(payload);
    const request = checked?.request;
    const key = request && `${request.tenant}.${request.name}@${request.digest}`;
    const held = key === undefined ? undefined : this.deps.key(key);
    const fd = socketFd(socket);
    if (!request || !key || !held || Atomics.load(held.cells, KEY.served) !== 1n || fd === undefined) {
      socket.write(encodeFrame(FrameType.declined, id, new Uint8Array(0)));
      return;
    }
    const { limits } = this.data;
    const timeoutMs = request.limits?.timeoutMs ?? limits.callTimeoutMs;
    const maxOutputBytes = request.limits?.outputBytes === undefined ? undefined : Math.min(request.limits.outputBytes, limits.maxOutputBytes);
    const serial = this.serial = this.serial + 1n;
    const { slot } = this;
    const startedAt = epochMs();
    // Every field first, the state last: the watchdog reads a call's fields only after it has seen its serial.
    Atomics.store(slot, SLOT.startedAt, BigInt(Math.floor(startedAt)));
    Atomics.store(slot, SLOT.limitMs, BigInt(timeoutMs));
    Atomics.store(slot, SLOT.fd, BigInt(fd));
    Atomics.store(slot, SLOT.frameId, BigInt(id));
    Atomics.store(slot, SLOT.inode, inode);
    Atomics.store(slot, SLOT.keyId, BigInt(held.id));
    Atomics.store(slot, SLOT.state, serial);
    // Sequentially consistent with the watchdog's disarm-then-scan: it sees this call, or this sees it disarmed.
    const armedAt = Atomics.load(this.pool, POOL.armedAt);
    if (armedAt === 0n || armedAt > BigInt(Math.ceil(startedAt + timeoutMs))) this.deps.wakeWatchdog();
    const reply = this.deps.run(key, request, maxOutputBytes, checked!.traceparent);
    if (Atomics.compareExchange(slot, SLOT.state, serial, 0n) !== serial) {
      // The watchdog claimed it: the caller has its timeout from the host, and this thread is about to be ended.
      Atomics.wait(this.never, 0, 0);
      return;
    }
    const ended = epochMs();
    Atomics.add(slot, SLOT.ownUs, BigInt(Math.round((ended - startedAt) * 1000)));
    Atomics.store(held.cells, KEY.lastEnded, BigInt(Math.floor(ended)));
    if (!socket.destroyed) socket.write(encodeFrame(FrameType.reply, id, this.encode(reply)));
    this.deps.after(key);
  }

  /** The reply encoded, or the refusal `output_limit` when it would not fit a frame the gateway takes. */
  private encode(reply: InvokeReply): Uint8Array {
    const data = encode(reply);
    // A frame's length counts its type and id (5 bytes) beside the reply.
    if (data.length <= this.data.maxFrameBytes - 5) return data;
    return encode({ ok: false, error: { code: 'output_limit', message: `the answer (${data.length} bytes) is larger than a call channel frame (${this.data.maxFrameBytes})` }, hostId: this.data.hostId } satisfies InvokeReply);
  }

  /** Stops listening and closes every connection. */
  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

/** A call frame's request (and its traceparent, unchecked) when it is certainly a well-formed one (the hand check), else undefined: declined. */
function checkedRequest(payload: Uint8Array): { request: InvokeRequest; traceparent: string } | undefined {
  const parts = splitCallPayload(payload);
  if (!parts || parts.request.length === 0) return undefined;
  try {
    const request = CallChecks.InvokeRequest(decode(parts.request, parts.request.length));
    return request && { request, traceparent: parts.traceparent };
  } catch {
    return undefined;
  }
}

/**
 * The socket's descriptor, for the main thread to write a timeout answer into while this thread is stuck in its
 * guest. Node has no public API for a socket's descriptor (`net.Socket` exposes none); `_handle.fd` is libuv's.
 */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** The socket's inode, noted once per connection: the main thread writes to the descriptor only while it still names this socket. */
function socketInode(socket: Socket): bigint {
  const fd = socketFd(socket);
  if (fd === undefined) throw new Error('a connection without a descriptor');
  return fstatSync(fd, { bigint: true }).ino;
}
