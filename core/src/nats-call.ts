/**
 * Every NATS exchange of the fleet, written once: the subject table
 * (subject-table.ts) names each subject's request and reply kinds and the
 * reply's default timeout; these helpers encode, validate, time out and turn
 * failures into FlurryErrors the same way at every site.
 *
 *   const reply = await call(nc, 'fork', Subjects.fork(host), req);           // ForkRequest in, ForkReply out
 *   serve(nc, 'fork', Subjects.fork(hostId), (req) => this.fork(req), { log, hostId });
 *   listen(nc, 'load', ControllerSubjects.load, (report) => this.onLoad(report));
 *   publishTo(nc, 'progress', JobSubjects.progress(tenant, id), progress);
 */
import { NoRespondersError, RequestError, TimeoutError, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { encode } from './codec.js';
import { decodeChecked, decodeOrRefuse, whyMalformed } from './checked-decode.js';
import { FlurryError, toWireError } from './errors.js';
import type { Logger } from './log.js';
import type { WireError } from './protocol.js';
import type { MessageKind, Protocol } from './schemas.js';
import { SubjectTable, type SubjectKind } from './subject-table.js';

type Table = typeof SubjectTable;
/** Subjects that are asked and answered. */
export type CallKind = { [K in SubjectKind]: Table[K] extends { reply: string } ? K : never }[SubjectKind];
/** Subjects that are only published to. */
export type PublishKind = Exclude<SubjectKind, CallKind>;
/** A subject's request and reply as protocol.ts declares them. */
export type RequestOf<K extends SubjectKind> = Protocol[Table[K]['request']];
export type ReplyOf<K extends CallKind> = Protocol[Table[K]['reply']];

/** Why a call got no reply: the `reason` callers tell apart (a resend, a retry, a host taken as gone). */
export type CallFailure = 'timeout' | 'no_responders' | 'connection';

/** A call that got no reply; `code` is `timeout` or `unavailable`, `cause` the client's error. */
export class CallFailed extends FlurryError {
  constructor(
    readonly reason: CallFailure,
    readonly subject: string,
    cause: unknown,
  ) {
    super(reason === 'timeout' ? 'timeout' : 'unavailable', `${subject}: ${reason === 'timeout' ? 'no reply in time' : reason === 'no_responders' ? 'nobody listens' : `the broker connection failed (${(cause as Error)?.message ?? cause})`}`, { cause });
  }
}

/** Whether `err` is a call that reached nobody (no subscriber on its subject). */
export const isNoResponders = (err: unknown): boolean => err instanceof CallFailed && err.reason === 'no_responders';
/** Whether `err` is a call whose reply did not come in time. */
export const isCallTimeout = (err: unknown): boolean => err instanceof CallFailed && err.reason === 'timeout';

export interface CallOptions {
  /** Overrides the table's timeout for this call. */
  timeoutMs?: number;
  headers?: MsgHdrs;
}

/** Asks `subject` with a request of `kind` and returns its checked reply. Throws CallFailed, or FlurryError `bad_request` for a malformed reply. */
export async function call<K extends CallKind>(nc: NatsConnection, kind: K, subject: string, request: RequestOf<K>, opts: CallOptions = {}): Promise<ReplyOf<K>> {
  return callEncoded(nc, kind, subject, encode(request), opts);
}

/** As call, for a request already encoded (encoded once for many sends, or forwarded as it came). */
export async function callEncoded<K extends CallKind>(nc: NatsConnection, kind: K, subject: string, payload: Uint8Array, opts?: CallOptions): Promise<ReplyOf<K>>;
/** With `raw`, the reply's bytes as they came (a reply forwarded to another asker), unchecked. */
export async function callEncoded<K extends CallKind>(nc: NatsConnection, kind: K, subject: string, payload: Uint8Array, opts: CallOptions & { raw: true }): Promise<Uint8Array>;
export async function callEncoded<K extends CallKind>(nc: NatsConnection, kind: K, subject: string, payload: Uint8Array, opts: CallOptions & { raw?: boolean } = {}): Promise<ReplyOf<K> | Uint8Array> {
  const entry: { reply: Table[K]['reply']; timeoutMs?: number } = SubjectTable[kind];
  let msg: Msg;
  try {
    msg = await nc.request(subject, payload, { timeout: opts.timeoutMs ?? entry.timeoutMs ?? 30_000, ...(opts.headers ? { headers: opts.headers } : {}) });
  } catch (err) {
    throw new CallFailed(failureOf(err), subject, err);
  }
  if (opts.raw) return msg.data;
  // Widened to one kind before the cast: the union of every reply's type is more than the compiler represents.
  const reply: unknown = decodeOrRefuse(entry.reply as MessageKind, msg.data, subject);
  return reply as ReplyOf<K>;
}

function failureOf(err: unknown): CallFailure {
  if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) return 'no_responders';
  if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) return 'timeout';
  return 'connection';
}

/** A `serve` handler's answer: the reply, or HANDED_OVER when another responder answers. */
export type Served<K extends CallKind> = ReplyOf<K> | typeof HANDED_OVER;

export interface ServeOptions {
  /** A queue group: one member of the group gets each request. */
  queue?: string;
  /** Where a reply that could not be sent is logged. */
  log?: Logger;
  /** Put into refusals whose kind carries the answering host. */
  hostId?: string;
}

/**
 * What a `serve` handler returns for a request it handed to another responder with its reply subject (a
 * migrated instance's request, to the instance's new host): that one answers the asker, so nothing is sent here.
 */
export const HANDED_OVER: unique symbol = Symbol('handed over');

/**
 * Answers requests of `kind` on `subject`. A malformed request is answered with the kind's refusal (`bad_request`)
 * and never reaches `handle`; what `handle` throws is answered as a refusal too. Nothing here throws out of the
 * subscription: a guest's or a peer's message cannot end the process.
 */
export function serve<K extends CallKind>(
  nc: NatsConnection, kind: K, subject: string, handle: (request: RequestOf<K>, msg: Msg) => Served<K> | Promise<Served<K>>, opts: ServeOptions = {},
): Subscription {
  const entry: { request: Table[K]['request'] } = SubjectTable[kind];
  return nc.subscribe(subject, {
    ...(opts.queue ? { queue: opts.queue } : {}),
    callback: (_err, msg) => {
      const decoded = requestOrRefusal(kind, msg.data, msg.subject, opts.hostId);
      if ('refused' in decoded) return respond(nc, kind, msg, decoded.refused, opts);
      let reply: Served<K> | Promise<Served<K>>;
      try {
        reply = handle(decoded.request, msg);
      } catch (err) {
        return respond(nc, kind, msg, refusal(kind, toWireError(err), opts.hostId), opts);
      }
      // As unknown: the union of every reply's type is more than the compiler represents.
      void Promise.resolve<unknown>(reply).then(
        (r) => r !== HANDED_OVER && respond(nc, kind, msg, r as ReplyOf<K>, opts),
        (err: unknown) => respond(nc, kind, msg, refusal(kind, toWireError(err), opts.hostId), opts),
      );
    },
  });
}

/** Sends `reply` to `msg`'s asker, or the refusal `output_limit` when the broker would not take it; a failed send is logged. */
export function respond<K extends CallKind>(nc: NatsConnection, kind: K, msg: Msg, reply: ReplyOf<K>, opts: Pick<ServeOptions, 'log' | 'hostId'> = {}): void {
  const limit = maxPayload(nc);
  const data = encodeReply(kind, reply, limit, `the broker takes (max_payload ${limit})`, opts.hostId);
  try {
    msg.respond(data);
  } catch (err) {
    opts.log?.warn({ subject: msg.subject, bytes: data.length, err: (err as Error).message }, 'a reply could not be sent');
  }
}

/**
 * A request of `kind` decoded and checked, or the kind's refusal
 * `bad_request` saying what is malformed (`where` names the message's origin
 * in the log of a refused one). The reason is worked out again only for a
 * refused request: the asker learns what to fix.
 */
export function requestOrRefusal<K extends CallKind>(kind: K, data: Uint8Array, where: string, hostId?: string): { request: RequestOf<K> } | { refused: ReplyOf<K> } {
  const entry: { request: Table[K]['request'] } = SubjectTable[kind];
  const request = decodeChecked(entry.request, data, where) as RequestOf<K> | undefined;
  if (request !== undefined) return { request };
  return { refused: refusal(kind, { code: 'bad_request', message: `malformed ${entry.request}: ${whyMalformed(entry.request, data)}` }, hostId) };
}

/** `reply` encoded, or the kind's refusal `output_limit` when it is over `limit` bytes (`limitName`: whose limit, for the message). */
export function encodeReply<K extends CallKind>(kind: K, reply: ReplyOf<K>, limit: number, limitName: string, hostId?: string): Uint8Array {
  const data = encode(reply);
  if (data.length <= limit) return data;
  return encode(refusal(kind, { code: 'output_limit', message: `the answer (${data.length} bytes) is larger than ${limitName}` }, hostId));
}

/** The largest message the broker takes, as it told this connection (1 MiB, NATS's default, until it has). */
export function maxPayload(nc: NatsConnection): number {
  return nc.info?.max_payload ?? 1024 * 1024;
}

/** Receives the messages of a publish-only `kind` on `subject`; malformed ones are dropped (counted, logged once), a throwing handler is logged. */
export function listen<K extends PublishKind>(nc: NatsConnection, kind: K, subject: string, handle: (message: RequestOf<K>, msg: Msg) => void | Promise<void>, opts: { queue?: string; log?: Logger } = {}): Subscription {
  const entry: { request: Table[K]['request'] } = SubjectTable[kind];
  return nc.subscribe(subject, {
    ...(opts.queue ? { queue: opts.queue } : {}),
    callback: (_err, msg) => {
      const message = decodeChecked(entry.request, msg.data, msg.subject) as RequestOf<K> | undefined;
      if (message === undefined) return;
      try {
        void Promise.resolve(handle(message, msg)).catch((err: unknown) => opts.log?.warn({ subject: msg.subject, err: (err as Error).message }, 'a message handler failed'));
      } catch (err) {
        opts.log?.warn({ subject: msg.subject, err: (err as Error).message }, 'a message handler failed');
      }
    },
  });
}

/** Publishes a message of a publish-only `kind`. */
export function publishTo<K extends PublishKind>(nc: NatsConnection, kind: K, subject: string, message: RequestOf<K>, opts: { headers?: MsgHdrs } = {}): void {
  nc.publish(subject, encode(message), opts.headers ? { headers: opts.headers } : undefined);
}

type ReplyKind = Table[CallKind]['reply'];

/**
 * How each reply kind says that its request was refused or failed: most as `{ ok: false, error }`; a release or
 * cancel reply names the host and what it did (nothing).
 */
const Refusals: { [R in ReplyKind]: (error: WireError, hostId: string) => Protocol[R] } = {
  PlaceReply: (error) => ({ ok: false, error }),
  DrainReply: (error) => ({ ok: false, error }),
  InvokeReply: (error, hostId) => ({ ok: false, error, ...(hostId ? { hostId } : {}) }),
  OpenCallsReply: (error) => ({ ok: false, error }),
  SnapshotReply: (error) => ({ ok: false, error }),
  ForkReply: (error, hostId) => ({ ok: false, error, ...(hostId ? { hostId } : {}) }),
  ReleaseReply: (error, hostId) => ({ hostId, error }),
  PageFetchReply: (error) => ({ ok: false, error }),
  CancelReply: (error, hostId) => ({ hostId, stopped: false, error }),
  JobControlReply: (error) => ({ ok: false, error }),
  TaskReply: (error) => ({ ok: false, error }),
  TaskSplitReply: (error) => ({ ok: false, error }),
  CreateInstanceReply: (error) => ({ ok: false, error }),
  DestroyInstanceReply: (error) => ({ ok: false, error }),
  StandbyParentReply: (error) => ({ ok: false, error }),
  MigrateInstanceReply: (error) => ({ ok: false, error }),
  ReceiveStepReply: (error) => ({ ok: false, error }),
  DrainHostReply: (error) => ({ ok: false, error }),
  SetHostStateReply: (error) => ({ ok: false, error }),
};

/** The reply to a request of `kind` that was refused or failed with `error`. */
export function refusal<K extends CallKind>(kind: K, error: WireError, hostId = ''): ReplyOf<K> {
  const make: (error: WireError, hostId: string) => Protocol[ReplyKind] = Refusals[SubjectTable[kind].reply];
  return make(error, hostId) as ReplyOf<K>;
}
