/**
 * Direct call channels (core/src/call-frames.ts): TCP connections on which
 * the gateway sends function calls straight to this host instead of through
 * the broker. A connection is taken only with a token the gateway gave this
 * host over NATS (`openCalls`, a subject only the gateway may publish to);
 * every call in it is decoded and checked as one from the queue group is,
 * and a call of a version not served here is declined (the gateway sends it
 * to the queue group). A bad frame closes its connection, never the process.
 */
import type { Server, Socket } from 'node:net';
import {
  answerCallConnection, encodeFrame, encodeReply, FrameType, parseTraceparent, refusal, requestOrRefusal, splitCallPayload, toWireError, writeFrame,
  type InvokeReply, type InvokeRequest, type Logger, type OpenCallsReply, type TraceContext,
} from '@flurry/core';
import { tokenDigest } from './guest/thread-call-cells.js';
import { listenTcp } from './tcp-listener.js';

/** Tokens kept: one per gateway replica, with room for replicas restarted since (the oldest goes first). */
const MAX_TOKENS = 16;
/** A connection that has not said its token by then is closed. */
const HELLO_TIMEOUT_MS = 5_000;

export interface CallChannelsDeps {
  hostId: string;
  /** Where to listen; `port` 0 takes a free one. */
  listen: { host: string; port: number };
  /** What the gateway is told to connect to (the listen address when it names one). */
  advertise?: string;
  /** The largest frame taken or sent (the broker's max_payload: as large as a call through it may be). */
  maxFrameBytes: number;
  /** Answers a call, or undefined when its version is not served here now. */
  take(req: InvokeRequest, trace: TraceContext | undefined): Promise<InvokeReply> | undefined;
  log: Logger;
  /** Call threads that read their own calls: given each token granted, their ports named in the grant. */
  threads?: { grant(digest: Uint8Array): void; ports(): number[] };
}

export class CallChannels {
  /** sha256 of each granted token: looking one up reveals nothing about the others by its timing. */
  private readonly tokens = new Set<string>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly deps: CallChannelsDeps,
    private readonly server: Server,
    private readonly address: { host: string; port: number },
  ) {}

  static async start(deps: CallChannelsDeps): Promise<CallChannels> {
    const { server, address } = await listenTcp({ ...deps.listen, advertise: deps.advertise });
    const channels = new CallChannels(deps, server, address);
    server.on('connection', (socket) => channels.accept(socket));
    server.on('error', (err) => deps.log.warn({ err: err.message }, 'call channel listener failed'));
    return channels;
  }

  /**
   * Takes the gateway's token; the gateway then connects to the address answered, and to each call thread's
   * port (the same host). Asked again with the same token, it names the threads' ports now.
   */
  grant(token: Uint8Array): OpenCallsReply {
    const hashed = tokenDigest(token);
    const id = hashed.toString('hex');
    this.tokens.delete(id);
    this.tokens.add(id);
    if (this.tokens.size > MAX_TOKENS) this.tokens.delete(this.tokens.values().next().value!);
    const { threads } = this.deps;
    if (!threads) return { ok: true, hostId: this.deps.hostId, ...this.address };
    threads.grant(hashed);
    return { ok: true, hostId: this.deps.hostId, ...this.address, threadPorts: threads.ports() };
  }

  /** Stops listening and closes every connection: calls not yet answered fail over to the queue group. */
  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private accept(socket: Socket): void {
    const { log, maxFrameBytes, hostId } = this.deps;
    this.sockets.add(socket);
    answerCallConnection(socket, {
      maxFrameBytes, hostId, helloTimeoutMs: HELLO_TIMEOUT_MS,
      admits: (token) => this.tokens.has(digest(token)),
      call: (id, payload) => this.call(socket, id, payload),
      refused: (err) => log.warn({ remote: socket.remoteAddress, err: err.message }, 'call channel closed: not the protocol'),
      closed: () => this.sockets.delete(socket),
    });
  }

  private call(socket: Socket, id: number, payload: Uint8Array): void {
    const { hostId, maxFrameBytes } = this.deps;
    const parts = splitCallPayload(payload);
    if (!parts) return send(socket, id, refusal('invoke', { code: 'bad_request', message: 'malformed InvokeRequest: a trace longer than the frame' }, hostId), maxFrameBytes, hostId);
    const decoded = requestOrRefusal('invoke', parts.request, 'call channel', hostId);
    if ('refused' in decoded) return send(socket, id, decoded.refused, maxFrameBytes, hostId);
    const answer = this.deps.take(decoded.request, parseTraceparent(parts.traceparent));
    if (!answer) {
      if (!socket.destroyed) writeFrame(socket, encodeFrame(FrameType.declined, id, new Uint8Array(0)));
      return;
    }
    answer.then(
      (reply) => send(socket, id, reply, maxFrameBytes, hostId),
      (err: unknown) => send(socket, id, refusal('invoke', toWireError(err), hostId), maxFrameBytes, hostId),
    );
  }
}

/** Writes a reply frame, or the refusal `output_limit` when the reply would not fit one. */
function send(socket: Socket, id: number, reply: InvokeReply, maxFrameBytes: number, hostId: string): void {
  if (socket.destroyed) return;
  // A frame's length counts its type and id (5 bytes) beside the reply.
  const data = encodeReply('invoke', reply, maxFrameBytes - 5, `a call channel frame (${maxFrameBytes})`, hostId);
  writeFrame(socket, encodeFrame(FrameType.reply, id, data));
}

function digest(token: Uint8Array): string {
  return tokenDigest(token).toString('hex');
}
