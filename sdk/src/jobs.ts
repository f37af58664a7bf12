/**
 * `flurry.jobs`: fork-join jobs. Submit one, follow its events (Server-Sent Events over a
 * streaming fetch), wait for it, read its result or one clone's output, cancel it.
 */
import { fromBase64, toBase64 } from './base64.js';
import { FlurryApiError, FlurryConnectionError, FlurryJobError } from './errors.js';
import { GatewayHeaders } from './gateway-headers.js';
import { readLogs, type GuestLogLine, type JobLogOptions } from './logs.js';
import { follow } from './followed-stream.js';
import { apiErrorFrom, parseJsonBody, type HttpRequest, type Transport } from './transport.js';
import type { JobBody, JobErrorInfo, JobRecord, JobState, PageCounts } from './types.js';

/**
 * Input bytes for a job: bytes as they are, a string as UTF-8, any other object as JSON.
 *
 * @example
 * const init: JobData = { scene: 'teapot', width: 1920 }; // sent as the JSON text's bytes
 */
export type JobData = Uint8Array | string | object;

/**
 * What to run. `input` goes to every clone; `inputs[i]` to clone `i` instead.
 *
 * @example
 * const spec: JobSpec = { function: 'render', clones: 32, init: sceneBytes, input: { tiles: 32 } };
 */
export interface JobSpec {
  /** The deployed function's name. */
  function: string;
  clones: number;
  /**
   * Work units: the clones take task indices as they go and run the module's `run_task(task, tasks)` for
   * each (fast clones take more), every clone with the whole `input`; outputs are per task, in task order.
   */
  tasks?: number;
  /** Given to the parent's `init()` before the snapshot. */
  init?: JobData;
  /** Instead of `init`: the name of data uploaded with `flurry.data.put`, read by the host that boots the parent. */
  initData?: string;
  /**
   * `fork` (default): one parent runs init, clones fork from its snapshot. `cold`: no snapshot;
   * every clone boots the module and runs init itself (the baseline fork is measured against).
   */
  boot?: 'fork' | 'cold';
  /** `false`: free the parent when the job ends; by default a host keeps it for later jobs with the same function version and init. */
  keepParent?: boolean;
  input?: JobData;
  inputs?: JobData[];
  /** Per clone run. */
  timeoutMs?: number;
  /** How many times a failed clone is started again. */
  retries?: number;
  /** `false`: skip the function's `reduce` and keep each clone's output. */
  reduce?: boolean;
  /**
   * The gateway POSTs the finished job's record there, signed (`Flurry-Signature`: check it with
   * `verifyCallbackSignature` and `callbackSecret()`), retried with backoff; the outcome is the
   * record's `callback`. Loopback, private, link-local and metadata addresses are refused unless
   * the operator allows them.
   */
  callbackUrl?: string;
  /**
   * Sent as `Idempotency-Key`: submitting the same spec again with it returns the same job.
   * Default: a new random key per `submit`, the same for each of its retries, so a retried
   * submit never makes two jobs.
   */
  idempotencyKey?: string;
}

/** What every job event carries: when (ms since the Unix epoch) and whose, and its place in the gateway's stream. */
export interface JobEventBase {
  at: number;
  tenant: string;
  jobId: string;
  /**
   * The event's SSE id: its sequence in the gateway's event stream, increasing (a `state`
   * event's is the last sequence its record reflects). Absent on a terminal event the gateway
   * made from the record because the stream does not have it.
   */
  id?: number;
}

/**
 * One event of a job, exactly as the gateway sends it (the `data:` JSON, with `kind` the SSE
 * event name); narrow on `kind`. The first event of every connection is `state`, carrying the
 * job's current record; the last is `done`, `failed` or `cancelled`, carrying the final one.
 * Kinds this SDK version does not know are skipped.
 *
 * @example
 * for await (const event of handle.events()) {
 *   if (event.kind === 'progress') console.log(`clone ${event.index}: ${event.done}/${event.total}`);
 *   if (event.kind === 'clone.failed' && event.final) console.error(event.error.message);
 * }
 */
export type JobEvent = JobEventBase &
  (
    | { kind: 'state'; job: JobRecord }
    /** The parent is being started on `host`. */
    | { kind: 'placed'; host: string }
    /** `reused`: a parent kept from an earlier job was used (no init, no new snapshot; both times 0). */
    | { kind: 'snapshot'; host: string; snapshotId: string; initMs: number; snapshotMs: number; reused?: boolean }
    /** `indices` were forked on `host`; `runningMs` from the fork request to all of them running. */
    | { kind: 'forked'; host: string; indices: number[]; runningMs: number; pager?: string }
    /** From the guest's `progress(done, total)`; in a job with tasks, without `index`: the tasks done of all. */
    | { kind: 'progress'; index?: number; done: number; total: number; host?: string }
    | { kind: 'clone.done'; index: number; host: string; startMs: number; runMs: number; pages?: PageCounts }
    /** `final`: no retries left, the clone has failed for good; otherwise it is forked again. */
    | { kind: 'clone.failed'; index: number; host?: string; attempt?: number; error: JobErrorInfo; final: boolean; task?: number }
    /** The platform lost the clone (its host died, its pages could not be had); it is forked again, not counted against `retries`. */
    | { kind: 'clone.lost'; index: number; host?: string; reason: string }
    /** The reduce output's size in bytes. */
    | { kind: 'reduced'; bytes: number }
    | { kind: 'done'; job: JobRecord }
    | { kind: 'failed'; job: JobRecord; error?: JobErrorInfo; errors?: JobRecord['errors'] }
    | { kind: 'cancelled'; job: JobRecord }
  );

export type JobEventKind = JobEvent['kind'];

const EVENT_KINDS: ReadonlySet<string> = new Set<JobEventKind>([
  'state', 'placed', 'snapshot', 'forked', 'progress', 'clone.done', 'clone.failed', 'clone.lost', 'reduced', 'done', 'failed', 'cancelled',
]);
const TERMINAL_STATES: ReadonlySet<string> = new Set<JobState>(['done', 'failed', 'cancelled']);

/**
 * True for `done`, `failed` and `cancelled`.
 *
 * @example
 * if (isTerminalState((await handle.status()).state)) console.log('finished');
 */
export function isTerminalState(state: string): state is 'done' | 'failed' | 'cancelled' {
  return TERMINAL_STATES.has(state);
}

/**
 * What a job produced: the reduce output, or (without a reduce) each clone's output in index order.
 *
 * @example
 * const result: JobResult = await handle.result();
 * const parts = result instanceof Uint8Array ? [result] : result;
 */
export type JobResult = Uint8Array | Uint8Array[];

/** Options of `wait` and `run`. */
export interface WaitOptions {
  /** Called with every event; it must not throw. */
  onEvent?: (event: JobEvent) => void;
  /** Stops waiting (the job goes on; `cancel()` stops it). */
  signal?: AbortSignal;
}

/**
 * One submitted job. Get one from `flurry.jobs.submit` or, for a job submitted elsewhere,
 * `flurry.jobs.handle(id)`.
 *
 * @example
 * const handle = await flurry.jobs.submit({ function: 'pi', clones: 8 });
 * for await (const event of handle.events()) if (event.kind === 'clone.done') console.log('clone', event.index);
 * const job = await handle.wait();
 */
export class JobHandle {
  constructor(
    private readonly transport: Transport,
    readonly id: string,
    /** The record as the gateway answered the submit; undefined for `jobs.handle(id)`. */
    readonly submitted?: JobRecord,
    /** True when the gateway answered the `Idempotency-Key` with a job submitted before (by an earlier submit, or by a retry of this one whose first answer was lost). */
    readonly replayed = false,
  ) {}

  /** The job's current record. */
  async status(): Promise<JobRecord> {
    return (await this.transport.json<{ job: JobRecord }>({ method: 'GET', path: this.path() })).job;
  }

  /**
   * The job's events, from a `state` event with the current record to the terminal event, each
   * once and in order. When the connection drops before the end it reconnects with
   * `Last-Event-ID` (the id of the last event it yielded) and goes on from there, waiting as the
   * client's `retries` say between attempts; it throws FlurryConnectionError (or the gateway's
   * FlurryApiError) after that many failed reconnects in a row. A `state` event comes again only
   * when the gateway no longer keeps what followed that id (then events already yielded are
   * skipped).
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const request: HttpRequest = { method: 'GET', path: this.path('/events'), headers: { accept: 'text/event-stream' } };
    /** The highest id yielded: sent as Last-Event-ID, and the line below which events were seen. */
    let lastId: number | undefined;
    yield* follow(this.transport, request, {
      resumeFrom: () => (lastId === undefined ? undefined : String(lastId)),
      endedEarly: 'the stream ended before the job finished',
      async *read(events, progressed) {
        let finished = false;
        for await (const message of events) {
          const event = parseEvent(message.event, message.data);
          if (event === undefined) continue;
          const id = parseEventId(message.id);
          // `state` and the end are never skipped: a fresh record, and the one event that ends the loop.
          if (event.kind !== 'state' && !isTerminalEvent(event) && id !== undefined && lastId !== undefined && id <= lastId) continue;
          if (id !== undefined) lastId = Math.max(lastId ?? id, id);
          // A `state` alone is no progress: a stream that ends after it again and again is a failing one.
          if (event.kind !== 'state') progressed();
          if (isTerminalEvent(event) || (event.kind === 'state' && isTerminalState(event.job.state))) finished = true;
          yield id === undefined ? event : { ...event, id };
          if (isTerminalEvent(event)) return true;
        }
        // A job already finished when we connected may end the stream right after `state`.
        return finished;
      },
    }, options.signal);
  }

  /**
   * Follows the events until the job ends. Resolves with the final record when it is done;
   * rejects with FlurryJobError (carrying the record) when it failed or was cancelled.
   */
  async wait(options: WaitOptions = {}): Promise<JobRecord> {
    let final: JobRecord | undefined;
    try {
      for await (const event of this.events({ signal: options.signal })) {
        options.onEvent?.(event);
        if (event.kind === 'state' && isTerminalState(event.job.state)) final = event.job;
        if (isTerminalEvent(event)) {
          final = isJobRecord(event.job) ? event.job : undefined;
          break;
        }
      }
    } catch (err) {
      // The stream gave up; the record may still say how the job ended.
      if (!(err instanceof FlurryConnectionError)) throw err;
      const record = await this.status();
      if (!isTerminalState(record.state)) throw err;
      final = record;
    }
    // Terminal events may carry only a summary; the record is the authority.
    if (final === undefined || !isTerminalState(final.state)) final = await this.status();
    if (final.state === 'done') return final;
    if (isTerminalState(final.state)) throw new FlurryJobError(final);
    throw new FlurryConnectionError(`job ${this.id}: the event stream ended, yet the job is ${final.state}`, { cause: undefined });
  }

  /**
   * The result of a finished job: the reduce output, or each clone's output when there was no
   * reduce. Throws FlurryApiError `conflict` while the job runs or when it failed.
   */
  async result(): Promise<JobResult> {
    const request: HttpRequest = { method: 'GET', path: this.path('/result') };
    const response = await this.transport.send(request);
    if (response.status < 200 || response.status > 299) throw apiErrorFrom(response);
    const type = response.headers.get('content-type') ?? '';
    if (!/^application\/json\b/i.test(type)) return response.body;
    const { outputs } = parseJsonBody<{ outputs: string[] }>(response, request);
    if (!Array.isArray(outputs)) {
      throw new FlurryApiError({
        status: response.status,
        code: 'internal',
        message: `gateway answered GET ${request.path} with JSON but no outputs`,
        requestId: response.headers.get(GatewayHeaders.requestId) ?? undefined,
      });
    }
    return outputs.map(fromBase64);
  }

  /** Clone `index`'s output; FlurryApiError `not_found` until the clone has finished. */
  async output(index: number): Promise<Uint8Array> {
    const response = await this.transport.send({ method: 'GET', path: this.path(`/clones/${index}/output`) });
    if (response.status < 200 || response.status > 299) throw apiErrorFrom(response);
    return response.body;
  }

  /** Cancels the job; returns its record (state `cancelled`). */
  async cancel(): Promise<JobRecord> {
    return (await this.transport.json<{ job: JobRecord }>({ method: 'DELETE', path: this.path() })).job;
  }

  private path(suffix = ''): string {
    return `/v1/jobs/${encodeURIComponent(this.id)}${suffix}`;
  }
}

/**
 * The jobs API. Reach it as `flurry.jobs`.
 *
 * @example
 * const sum = await flurry.jobs.run({ function: 'pi', clones: 16, input: { samples: 1e6 } });
 * const { jobs, next } = await flurry.jobs.list({ limit: 10 });
 */
export class JobsApi {
  constructor(private readonly transport: Transport) {}

  /**
   * Submits a job and returns its handle as soon as the gateway has accepted it. Retried like
   * any idempotent request (the client's `retries`): it always carries an `Idempotency-Key`.
   */
  async submit(spec: JobSpec): Promise<JobHandle> {
    const headers = new Headers({ 'content-type': 'application/json', 'idempotency-key': spec.idempotencyKey ?? crypto.randomUUID() });
    const body: JobBody = {
      function: spec.function,
      clones: spec.clones,
      tasks: spec.tasks,
      init: encodeData(spec.init),
      initData: spec.initData,
      boot: spec.boot,
      keepParent: spec.keepParent,
      input: encodeData(spec.input),
      inputs: spec.inputs?.map((data) => encodeData(data) as string),
      timeoutMs: spec.timeoutMs,
      retries: spec.retries,
      reduce: spec.reduce,
      callbackUrl: spec.callbackUrl,
    };
    const answer = await this.transport.jsonAnswer<{ job: JobRecord }>({
      method: 'POST',
      path: '/v1/jobs',
      headers,
      body: new TextEncoder().encode(JSON.stringify(body)),
    });
    const job = answer.value.job;
    return new JobHandle(this.transport, job.id, job, answer.status === 200);
  }

  /** Submits a job, waits for it and returns its result (see `JobHandle.wait` and `result`). */
  async run(spec: JobSpec, options: WaitOptions = {}): Promise<JobResult> {
    const handle = await this.submit(spec);
    await handle.wait(options);
    return handle.result();
  }

  /** A handle on a job by id, without a request. */
  handle(id: string): JobHandle {
    return new JobHandle(this.transport, id);
  }

  async get(id: string): Promise<JobRecord> {
    return this.handle(id).status();
  }

  /**
   * What the job's clones (and its reduce) logged, or one `clone`'s: the last lines kept, or
   * with `follow: true` those and each new line as it is stored.
   *
   * @example
   * const lines = await flurry.jobs.logs(job.id, { clone: 3 });
   */
  logs(id: string, options: JobLogOptions & { follow: true }): AsyncGenerator<GuestLogLine>;
  logs(id: string, options?: JobLogOptions & { follow?: false }): Promise<GuestLogLine[]>;
  logs(id: string, options: JobLogOptions & { follow?: boolean } = {}): Promise<GuestLogLine[]> | AsyncGenerator<GuestLogLine> {
    return readLogs(this.transport, `/v1/jobs/${encodeURIComponent(id)}/logs`, options);
  }

  /**
   * This tenant's callback signing secret: the key that `verifyCallbackSignature` checks a
   * callback's `Flurry-Signature` with.
   */
  async callbackSecret(): Promise<string> {
    return (await this.transport.json<{ secret: string }>({ method: 'GET', path: '/v1/callback-secret' })).secret;
  }

  /** One page of the tenant's jobs; pass `next` back as `cursor` for the following page. */
  async list(options: { limit?: number; cursor?: string } = {}): Promise<{ jobs: JobRecord[]; next?: string }> {
    const query: Record<string, string> = {};
    if (options.limit !== undefined) query.limit = String(options.limit);
    if (options.cursor !== undefined) query.cursor = options.cursor;
    const answer = await this.transport.json<{ jobs: JobRecord[]; next?: string | null }>({ method: 'GET', path: '/v1/jobs', query });
    return answer.next ? { jobs: answer.jobs, next: answer.next } : { jobs: answer.jobs };
  }
}

/** The gateway's ids are stream sequences; an id that is not one cannot be compared, so it is not used. */
function parseEventId(id: string | undefined): number | undefined {
  return id !== undefined && /^\d{1,15}$/.test(id) ? Number(id) : undefined;
}

function isTerminalEvent(event: JobEvent): event is Extract<JobEvent, { kind: 'done' | 'failed' | 'cancelled' }> {
  return event.kind === 'done' || event.kind === 'failed' || event.kind === 'cancelled';
}

function isJobRecord(value: unknown): value is JobRecord {
  const record = value as Partial<JobRecord> | null | undefined;
  return typeof record?.id === 'string' && typeof record.state === 'string' && typeof record.counts === 'object';
}

/**
 * Unknown kinds and undecodable data are skipped: a newer gateway may say more than this SDK
 * knows. A `state` without a record is skipped too; a terminal event never is (`wait` then
 * asks for the record).
 */
function parseEvent(kind: string, data: string): JobEvent | undefined {
  if (!EVENT_KINDS.has(kind)) return undefined;
  let parsed: unknown;
  try {
    parsed = data === '' ? {} : JSON.parse(data);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  if (kind === 'state' && !isJobRecord((parsed as { job?: unknown }).job)) return undefined;
  // The SSE event name is the kind; the data repeats it, and the name wins. The id is the SSE line's only.
  const event = { ...parsed, kind } as JobEvent;
  delete event.id;
  return event;
}

function encodeData(data: JobData | undefined): string | undefined {
  if (data === undefined) return undefined;
  if (data instanceof Uint8Array) return toBase64(data);
  if (typeof data === 'string') return toBase64(new TextEncoder().encode(data));
  return toBase64(new TextEncoder().encode(JSON.stringify(data)));
}
