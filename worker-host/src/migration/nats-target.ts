/**
 * The pre-copy driver's target as NATS requests to the target host
 * (docs/services.md, "Migration"): pages in chunks of at most CHUNK_BYTES
 * (under the default 1 MiB max_payload), a few in flight; the end of a
 * migration (last pages, globals, commit) is one step when the last pages fit
 * one chunk. A source whose commit answer was lost asks the target (`status`)
 * how it ended instead of guessing. The target's side: migration-receiver.ts.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { call, decodeOrRefuse, encode, FlurryError, isNoResponders, MigrationSubjects, type KeptReply, type ReceiveStep, type ReceiveStepReply, type RequestSample } from '@flurry/core';
import type { GlobalValue } from '../guest/instance.js';
import { keptReplyBytes } from '../reply-table.js';
import { CommitOutcomeUnknown, type CommitOutcome, type CommitTiming, type PrecopyTarget } from './precopy.js';
import { PageStreamListener, STREAM_WINDOW, type PageStreamSender } from './page-stream.js';
import { CHUNK_BYTES, chunked, globalsToWire, u32View, type Chunk } from './wire-pages.js';

/** Now, ms since the epoch with sub-ms precision: comparable between processes that share a clock. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/** Apply messages in flight at once. */
const WINDOW = 4;
/** Kept replies a commit carries at most (newest first); its last pages go in an apply step before it when both would not fit a chunk. */
export const COMMIT_REPLY_BYTES = 512 * 1024;
/**
 * Kept replies a round's apply step carries at most, within the 64 KiB a chunk leaves under the broker's 1 MiB:
 * sent along the rounds, a few at a time, so that neither host encodes or decodes and checks them all at once
 * (1,500 of them held the source's main thread for tens of ms and the target's for 100-200 ms before the stop).
 */
export const APPLY_REPLY_BYTES = 32 * 1024;

/** What the prepare step tells the target, its memory size aside: it boots the instance's parent (same version and init input) before pages arrive. */
export type PrepareInfo = Omit<Extract<ReceiveStep, { step: 'prepare' }>, 'step' | 'memoryBytes' | 'stream'>;

/** While pages travel the source asks the target this often whether it is still there (the migration's heartbeat). */
const PROBE_EVERY_MS = 250;
/** A target that answers no probe for this long is taken for dead (one that is gone answers none at once). */
const PROBE_TIMEOUT_MS = 3000;
/**
 * A target that has not heard a migration's source (a step or a probe) for this long ends the migration, refused:
 * many probe periods, and beyond the source's own patience (PROBE_TIMEOUT_MS), after which it gives up itself.
 */
export const SOURCE_SILENT_MS = 10_000;
/** Asking a lost commit's outcome: the first wait between two questions, doubled up to the last. */
const ASK_FIRST_MS = 100;
const ASK_LAST_MS = 2000;
/**
 * A lost commit's target that has no subscriber for this long is gone for good (a dead process owns nothing).
 * Shorter runs of no responders are a target still reconnecting after a broker restart.
 */
const GONE_AFTER_MS = 3000;

export interface NatsTargetOptions {
  /** Each step's answer (steps carry at most about 1 MiB). */
  stepTimeoutMs: number;
  /** The prepare's answer (the target may boot the parent first). */
  prepareTimeoutMs: number;
  /** How long a source whose commit answer was lost asks the target for the outcome before it gives up. */
  outcomeTimeoutMs: number;
  /**
   * Where this host listens for the target's page stream (page-stream.ts; the host's channel address, and what
   * the target is told to connect to): the rounds' pages go on it, not through the broker. None: apply steps.
   */
  pageStream?: { host: string; advertise?: string };
}

/**
 * A PrecopyTarget whose steps are NATS requests to `targetHost`, plus its
 * abort. From prepare to commit it probes the target: a target that is
 * gone (no responders) or silent fails the step in progress at once instead
 * of after the step's timeout.
 */
export class NatsTarget implements PrecopyTarget {
  /** Set before the migration: the target hashes the instance's memory once committed (memoryHash). */
  verify = false;
  memoryHash: string | undefined;
  /**
   * The source's replies of the instance kept after `after` (reply-table.ts, exportSince), newest first, at most
   * `maxBytes` of them, and the `through` to ask after next: those not sent yet go with the steps.
   */
  keptReplies: ((maxBytes: number, after: number) => { replies: KeptReply[]; through: number }) | undefined;
  /** Requests the instance ran lately, which the target runs once in a throwaway clone before the commit (quiesce). */
  samples: (() => RequestSample[]) | undefined;
  private prepared = false;
  /** The request samples went with a quiesce step. */
  private warmed = false;
  private probe: NodeJS.Timeout | undefined;
  private probing = false;
  private lost: FlurryError | undefined;
  private onLost: ((err: FlurryError) => void) | undefined;
  private readonly gone = new Promise<never>((_, reject) => (this.onLost = reject));
  /** The commit's last pages before its last step (reported with the outcome too). */
  private sendMs = 0;
  /** The source's newest kept replies (COMMIT_REPLY_BYTES of them, newest first) as read from its table, and which were sent. */
  private recent: { reply: KeptReply; size: number; sent: boolean }[] = [];
  /** Where the source's table was read up to (its `through`). */
  private repliesThrough = 0;
  /** The page stream to the target, once it connected (the prepare's answer says so). */
  private stream: PageStreamSender | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly targetHost: string,
    private readonly info: PrepareInfo,
    private readonly opts: NatsTargetOptions,
  ) {
    this.gone.catch(() => undefined);
  }

  private request(step: ReceiveStep, timeoutMs: number): Promise<ReceiveStepReply> {
    // A garbled answer throws like a lost one: a commit's is then an unknown outcome, never a success.
    return call(this.nc, 'receive', MigrationSubjects.receive(this.targetHost), step, { timeoutMs });
  }

  /** A step before the commit: fails as soon as the target is lost. */
  private async step(step: ReceiveStep, timeout = this.opts.stepTimeoutMs): Promise<Extract<ReceiveStepReply, { ok: true }>> {
    if (this.lost) throw this.lost;
    let reply: ReceiveStepReply;
    try {
      reply = await Promise.race([this.request(step, timeout), this.gone]);
    } catch (err) {
      if (err === this.lost) throw err;
      if (isNoResponders(err)) throw new FlurryError('unavailable', `target host ${this.targetHost} is gone (no responders to the migration step ${step.step})`);
      throw new FlurryError('unavailable', `target host ${this.targetHost} did not answer the migration step ${step.step}: ${(err as Error).message}`);
    }
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return reply;
  }

  private startProbing(): void {
    this.probe = setInterval(() => {
      if (this.probing || this.lost) return;
      this.probing = true;
      this.request({ step: 'ping', migrationId: this.info.migrationId }, PROBE_TIMEOUT_MS)
        .then((reply) => {
          if (!reply.ok) this.fail(`target host ${this.targetHost} no longer receives this migration: ${reply.error.message}`);
        })
        .catch((err: unknown) => {
          this.fail(isNoResponders(err) ? `target host ${this.targetHost} is gone (no responders)` : `target host ${this.targetHost} stopped answering the migration's heartbeat for ${PROBE_TIMEOUT_MS} ms`);
        })
        .finally(() => (this.probing = false));
    }, PROBE_EVERY_MS);
  }

  private fail(message: string): void {
    if (this.lost || !this.probe) return;
    this.stopProbing();
    this.lost = new FlurryError('unavailable', message);
    this.onLost?.(this.lost);
  }

  private stopProbing(): void {
    clearInterval(this.probe);
    this.probe = undefined;
  }

  /** Says whether the target's own parent has the source's parent digest (the instance then starts from it). */
  async prepare(memoryBytes: number, parentDigest?: string): Promise<{ fromParent: boolean }> {
    if (this.prepared) return { fromParent: false };
    // Probed from the prepare on: booting the parent may take long, a target that dies meanwhile must not.
    this.startProbing();
    this.prepared = true;
    const listener = this.opts.pageStream ? await PageStreamListener.open(this.opts.pageStream, `target host ${this.targetHost}`).catch(() => undefined) : undefined;
    try {
      const stream = listener ? { stream: listener.offer } : {};
      const prepared = this.step({ step: 'prepare', ...this.info, memoryBytes, ...(parentDigest ? { parentDigest } : {}), ...stream }, this.opts.prepareTimeoutMs);
      // While the target prepares: the source's kept replies read once (none taken yet), so that the first apply step
      // reads only those kept since. That first read walks every reply the instance kept (950 in the bench: 6 ms of
      // the source's main thread, traced), which in the first apply stacked with the first slice's send.
      this.unsentReplies(0);
      const reply = await prepared;
      // The target answers `stream: true` only once welcomed: the connection is here already.
      if (listener && reply.stream === true) this.stream = await Promise.race([listener.connected(), this.gone]);
      return { fromParent: parentDigest !== undefined && reply.fromParent === true };
    } finally {
      listener?.close();
    }
  }

  /** Whether the pages go on a page stream (else as apply steps). */
  get streaming(): boolean {
    return this.stream !== undefined;
  }

  /** One chunk of pages to the target: on the page stream when there is one, else an apply step. */
  private async applyChunk(c: Chunk, memoryBytes: number, replies: KeptReply[] | undefined): Promise<void> {
    const { migrationId } = this.info;
    if (!this.stream) {
      await this.step({ step: 'apply', migrationId, pages: c.pages, bytes: c.bytes, memoryBytes, ...(replies ? { replies } : {}) });
      return;
    }
    if (this.lost) throw this.lost;
    const pages = u32View(c.pages);
    // The replies that ride with a round go as an apply step of no pages (a small message), beside the stream.
    await Promise.all([
      Promise.race([this.stream.send(pages, c.bytes, memoryBytes), this.gone]),
      replies ? this.step({ step: 'apply', migrationId, pages: new Uint8Array(0), bytes: new Uint8Array(0), memoryBytes, replies }) : undefined,
    ]);
  }

  async apply(pages: Uint32Array, bytes: Uint8Array, memoryBytes: number): Promise<void> {
    await this.prepare(memoryBytes);
    const chunks = chunked(pages, bytes);
    // An empty round still tells the target the memory size.
    if (chunks.length === 0) chunks.push({ pages: new Uint8Array(0), bytes: new Uint8Array(0) });
    await this.send(chunks, memoryBytes, this.unsentReplies(APPLY_REPLY_BYTES));
  }

  async settle(): Promise<void> {
    await this.step({ step: 'settle', migrationId: this.info.migrationId });
  }

  async quiesce(): Promise<void> {
    // Nothing received yet (stop-and-copy only): no garbage of the migration's to collect.
    if (!this.prepared) return;
    const replies = this.unsentReplies();
    // Pages on the stream left the target no garbage to collect: once warmed, a step only to carry replies.
    if (this.stream && this.warmed && replies.length === 0) return;
    // With the first only (after round 0): the target warms its code with them once.
    const samples = this.warmed ? [] : (this.samples?.() ?? []);
    this.warmed = true;
    await this.step({ step: 'quiesce', migrationId: this.info.migrationId, ...(replies.length > 0 ? { replies } : {}), ...(samples.length > 0 ? { samples } : {}) });
  }

  /**
   * Of the source's newest kept replies (COMMIT_REPLY_BYTES of them), those not sent yet, newest first, as many as
   * fit `maxBytes` (one too large is left for a later step); now counted as sent. Only those kept since the last
   * step are read from the source's table: a step, the commit in the pause included, never walks all of them.
   */
  private unsentReplies(maxBytes = COMMIT_REPLY_BYTES): KeptReply[] {
    const fresh = this.keptReplies?.(COMMIT_REPLY_BYTES, this.repliesThrough);
    if (fresh) {
      this.repliesThrough = fresh.through;
      if (fresh.replies.length > 0) {
        // The newest COMMIT_REPLY_BYTES of the table, sent or not (as it would export them); older ones are never sent.
        let bytes = 0;
        this.recent = [...fresh.replies.map((reply) => ({ reply, size: keptReplyBytes(reply), sent: false })), ...this.recent].filter(
          (r) => bytes + r.size <= COMMIT_REPLY_BYTES && (bytes += r.size) > 0,
        );
      }
    }
    const replies: KeptReply[] = [];
    let bytes = 0;
    for (const r of this.recent) {
      if (r.sent || bytes + r.size > maxBytes) continue;
      bytes += r.size;
      replies.push(r.reply);
      r.sent = true;
    }
    return replies;
  }

  /** Apply steps, a few in flight; the first carries `replies`. */
  private async send(chunks: Chunk[], memoryBytes: number, replies: KeptReply[] = []): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const first = next === 0 && replies.length > 0;
        const c = chunks[next++]!;
        await this.applyChunk(c, memoryBytes, first ? replies : undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, chunks.length) }, worker));
  }

  /**
   * The last pages, the globals and the commit: all but the last chunk as
   * apply steps, then one commit step with the last chunk and the globals;
   * the target applies them and subscribes the instance's subject before it
   * answers, so the source may let go then. With a page stream the last
   * pages and then the commit go on it instead (the last STREAM_WINDOW
   * frames not waited for: the target reads them before the commit, on the
   * same connection), and the answer comes back on it: no broker hop either
   * way, no ack's round trip, and no large NATS message in the pause. A
   * commit that got no answer (lost, timed out, garbled, a stream that broke
   * after it was sent) may have taken effect: CommitOutcomeUnknown.
   */
  async commit(last: { pages: Uint32Array; bytes: Uint8Array; memoryBytes: number }, globals: Record<string, GlobalValue>, pagesSent: number, onSent?: () => void): Promise<CommitTiming> {
    await this.prepare(last.memoryBytes);
    const chunks = chunked(last.pages, last.bytes);
    // Those not sent with the apply steps or the quiesce step (the others are on the target already).
    const replies = this.unsentReplies();
    const repliesBytes = replies.reduce((n, r) => n + keptReplyBytes(r), 0);
    const { stream } = this;
    // The commit stays one message under the broker's limit: the last pages go before it when the replies fill it.
    const final = !stream && chunks.length > 0 && chunks.at(-1)!.bytes.length + repliesBytes <= CHUNK_BYTES ? chunks.pop()! : { pages: new Uint8Array(0), bytes: new Uint8Array(0) };
    const unacked = stream ? chunks.splice(Math.max(0, chunks.length - STREAM_WINDOW)) : [];
    const started = performance.now();
    try {
      if (chunks.length > 0) await this.send(chunks, last.memoryBytes);
    } finally {
      // Not cut short by the probe from here on: the commit may take effect before a failed probe would say so.
      this.stopProbing();
    }
    this.sendMs = performance.now() - started;
    if (this.lost) throw this.lost;
    // Their acks are not waited for: the commit behind them is answered once the target has read them.
    for (const c of unacked) stream!.send(u32View(c.pages), c.bytes, last.memoryBytes).catch(() => undefined);
    // The target refuses a commit that reaches it after the source stopped waiting for its answer.
    const expiresAt = Date.now() + this.opts.stepTimeoutMs;
    const { migrationId } = this.info;
    const step: ReceiveStep = { step: 'commit', migrationId, pages: final.pages, bytes: final.bytes, memoryBytes: last.memoryBytes, globals: globalsToWire(globals), expiresAt, pagesSent, ...(this.verify ? { verify: true } : {}), ...(replies.length > 0 ? { replies } : {}) };
    let reply: ReceiveStepReply;
    const sentAt = epochMs();
    // Sent before this returns (on a stream broken already it throws, sent to nobody): what onSent sends goes after it.
    const asked = stream ? this.commitOnStream(stream, step) : this.request(step, this.opts.stepTimeoutMs);
    onSent?.();
    try {
      reply = await asked;
    } catch (err) {
      // No responders: nobody subscribed, so nobody got it.
      if (isNoResponders(err)) throw new FlurryError('unavailable', `target host ${this.targetHost} is gone (no responders): the commit of migration ${migrationId} reached nobody`);
      throw new CommitOutcomeUnknown(`the commit of migration ${migrationId} got no answer from target host ${this.targetHost}: ${(err as Error).message}`, { cause: err });
    }
    const gotAt = epochMs();
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    const { receivedAt, answeredAt } = reply.targetMs ?? {};
    return { ...this.committed(reply), ...(receivedAt !== undefined && answeredAt !== undefined ? { outMs: receivedAt - sentAt, backMs: gotAt - answeredAt } : {}) };
  }

  /** The commit on the page stream, behind the last pages; its answer, checked, within the step timeout. */
  private commitOnStream(stream: PageStreamSender, step: ReceiveStep): Promise<ReceiveStepReply> {
    const answered = stream.commit(encode(step));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer on the page stream within ${this.opts.stepTimeoutMs} ms`)), this.opts.stepTimeoutMs);
    });
    return Promise.race([answered, timeout])
      .then((data) => decodeOrRefuse('ReceiveStepReply', data))
      .finally(() => clearTimeout(timer));
  }

  private committed(reply: Extract<ReceiveStepReply, { ok: true }>): CommitTiming {
    this.memoryHash = reply.memoryHash;
    return { sendMs: this.sendMs, targetCommitMs: reply.targetMs?.totalMs, targetApplyMs: reply.targetMs?.applyMs, pagesApplied: reply.pagesApplied };
  }

  /**
   * After a lost commit answer: asks the target (`status`, backing off) until
   * it says committed or refused — or it is gone for good (no responders for
   * GONE_AFTER_MS), which refuses too. Rejects once outcomeTimeoutMs has
   * passed with no answer (a hung or partitioned target, an unreachable broker).
   */
  async outcome(): Promise<CommitOutcome> {
    const { migrationId } = this.info;
    const until = Date.now() + this.opts.outcomeTimeoutMs;
    let goneSince: number | undefined;
    let why = 'no answer';
    for (let wait = ASK_FIRST_MS; ; wait = Math.min(2 * wait, ASK_LAST_MS)) {
      try {
        const reply = await this.request({ step: 'status', migrationId }, Math.max(1, Math.min(this.opts.stepTimeoutMs, until - Date.now())));
        goneSince = undefined;
        if (!reply.ok) why = reply.error.message;
        else if (reply.outcome === 'committed') return { committed: true, timing: this.committed(reply) };
        else if (reply.outcome === 'refused') return { committed: false, error: new FlurryError('unavailable', `target host ${this.targetHost} did not take the instance: ${reply.reason ?? 'refused'}`) };
        else why = 'an answer without an outcome';
      } catch (err) {
        why = (err as Error).message;
        if (!isNoResponders(err)) goneSince = undefined;
        else if (Date.now() - (goneSince ??= Date.now()) >= GONE_AFTER_MS) {
          return { committed: false, error: new FlurryError('unavailable', `target host ${this.targetHost} is gone (no responders for ${GONE_AFTER_MS} ms after the commit's answer was lost)`) };
        }
      }
      if (Date.now() + wait >= until) {
        throw new FlurryError('unavailable', `the outcome of the commit of migration ${migrationId} on target host ${this.targetHost} is unknown after ${this.opts.outcomeTimeoutMs} ms (${why})`);
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Best effort: the target drops what it received. */
  async abort(): Promise<void> {
    this.stopProbing();
    this.stream?.close();
    if (!this.prepared) return;
    await this.request({ step: 'abort', migrationId: this.info.migrationId }, 1000).catch(() => undefined);
  }
}
