/**
 * The target host's side of a live migration over NATS (docs/services.md,
 * "Migration"): answers the ReceiveSteps of NatsTarget (nats-target.ts),
 * receiving the instance into the guest pool, and remembers how each
 * migration ended so that a source whose commit answer was lost can ask.
 */
import { decodeOrRefuse, encode, FlurryError, toWireError, type InitDataRef, type KeptReply, type Logger, type ReceiveStep, type ReceiveStepReply, type RequestSample } from '@flurry/core';
import type { GuestPool } from '../guest/guest-pool.js';
import type { ParentSpec } from '../service-parents.js';
import { epochMs, SOURCE_SILENT_MS, type PrepareInfo } from './nats-target.js';
import { PageStreamReader, type StreamOffer } from './page-stream.js';
import { snapshotDigest } from './parent-digest.js';
import { bytesToU32, globalsFromWire } from './wire-pages.js';

interface Receiving extends PrepareInfo {
  /** The pool key of its parent (released if it is dropped). */
  parentKey: string;
  poolId: string;
  startedAt: number;
  /** When its source was last heard (a step or a probe), as Date.now(). */
  heardAt: number;
  /** The instance started from this host's parent, which has the source's parent digest. */
  fromParent: boolean;
  /** The page stream from the source (page-stream.ts), when it offered one and it connected. */
  pageStream?: PageStreamReader;
  /** A quiesce step collected this migration's garbage once. */
  collected?: boolean;
}

export interface ReceiverDeps {
  hostId: string;
  pool: GuestPool;
  log: Logger;
  /** The instance's parent, warm on this host (booted with its init input if need be); one user until `releaseParent`. */
  acquireParent: (spec: ParentSpec) => Promise<string>;
  releaseParent: (key: string) => void;
  /** Keeps the source's kept replies of an instance being received (an apply or quiesce step's), and forgets them if it does not come. */
  keepReplies: (instanceId: string, replies: KeptReply[]) => void;
  forgetReplies: (instanceId: string) => void;
  /** Runs the source's request samples once in a throwaway clone of the parent `parentKey` (best effort: never throws). */
  warm: (parentKey: string, samples: RequestSample[]) => Promise<void>;
  /** A received instance whose last step failed after its commit was answered: it serves no more (its pool copy is gone). */
  drop: (instanceId: string) => void;
  /** Starts serving a received instance (subscribes its subject). */
  adopt: (r: { tenant: string; service: string; instanceId: string; poolId: string; parentKey: string; init?: Uint8Array; initData?: InitDataRef; name: string; digest: string; replies?: KeptReply[] }) => Promise<void>;
  /** A migration whose source is not heard for this long ends here, refused (default SOURCE_SILENT_MS). */
  sourceSilentMs?: number;
}

/** How long the target remembers how a migration ended: far longer than a source asks after a lost commit answer. */
const OUTCOME_MS = 10 * 60_000;

type Answer = Omit<Extract<ReceiveStepReply, { ok: true }>, 'ok'>;

/** How a migration ended on this host (`instanceId`: where it was known). */
type Ended = { at: number; instanceId?: string } & ({ outcome: 'committed'; answer: Answer } | { outcome: 'refused'; reason: string });

/**
 * The target host's side: answers ReceiveSteps. Every migration it heard of
 * ends once, committed or refused, and the end is remembered (OUTCOME_MS):
 * no step of a migration that ended takes effect, so a `status` answered
 * `refused` means the commit never will.
 */
export class MigrationReceiver {
  private readonly receiving = new Map<string, Receiving>();
  private readonly ended = new Map<string, Ended>();
  /** Commits under way: a status question waits for them. */
  private readonly committing = new Map<string, Promise<Answer>>();
  /** Requests handed over before their migration ended here, woken at each change of it (settled). */
  private readonly waiting = new Map<string, (() => void)[]>();
  private readonly silentMs: number;
  /** Checks the sources' silence while anything is being received. */
  private silenceWatch: NodeJS.Timeout | undefined;
  private watchedAt = 0;

  constructor(private readonly deps: ReceiverDeps) {
    this.silentMs = deps.sourceSilentMs ?? SOURCE_SILENT_MS;
  }

  /** Acts on one step (served on the host's receive subject, which refuses what is not a step); a failure throws, to be answered as a refusal. */
  async answer(step: ReceiveStep): Promise<ReceiveStepReply> {
    return { ok: true, ...(await this.step(step)) };
  }

  private get(migrationId: string): Receiving {
    const r = this.receiving.get(migrationId);
    if (!r) throw new FlurryError('not_found', `no migration ${migrationId} is being received on host ${this.deps.hostId}`);
    return r;
  }

  private async step(s: ReceiveStep): Promise<Answer | undefined> {
    const { pool } = this.deps;
    const heard = this.receiving.get(s.migrationId);
    if (heard) heard.heardAt = Date.now();
    switch (s.step) {
      case 'prepare': {
        this.sweep();
        const again = this.receiving.get(s.migrationId);
        if (again) return { fromParent: again.fromParent };
        const ended = this.ended.get(s.migrationId);
        if (ended) throw new FlurryError('conflict', `migration ${s.migrationId} ended already on host ${this.deps.hostId} (${ended.outcome})`);
        const parentKey = await this.deps.acquireParent({ requestId: s.requestId, tenant: s.tenant, name: s.name, digest: s.digest, init: s.init, initData: s.initData });
        let poolId: string;
        let fromParent = false;
        try {
          // Only a parent with the same bytes may stand in for the pages round 0 then leaves out.
          fromParent = s.parentDigest !== undefined && s.parentDigest === (await snapshotDigest(pool.snapshotImage(parentKey)).catch(() => undefined));
          poolId = await pool.receiveInstance(parentKey, { memoryBytes: s.memoryBytes, fromParent });
        } catch (err) {
          this.deps.releaseParent(parentKey);
          throw err;
        }
        const { step: _s, memoryBytes: _m, parentDigest: _d, stream: offer, ...info } = s;
        this.receiving.set(s.migrationId, { ...info, parentKey, poolId, startedAt: Date.now(), heardAt: Date.now(), fromParent });
        this.watchSilence();
        // Aborted or asked about while the parent booted: it ended then, and keeps nothing.
        const meanwhile = this.ended.get(s.migrationId);
        if (meanwhile?.outcome === 'refused') {
          this.end(s.migrationId, meanwhile.reason);
          throw new FlurryError('conflict', `migration ${s.migrationId} ended while it was being prepared on host ${this.deps.hostId} (${meanwhile.reason})`);
        }
        const stream = offer ? await this.connectStream(s.migrationId, poolId, offer) : false;
        this.deps.log.info({ service: `${s.tenant}/${s.service}`, instanceId: s.instanceId, migrationId: s.migrationId, memoryBytes: s.memoryBytes, fromParent, stream }, 'receiving service instance');
        return { fromParent, ...(offer ? { stream } : {}) };
      }
      case 'ping': {
        // Says this host is alive and still receiving: a commit may have ended the migration an instant ago, a refusal ended it for good.
        const ended = this.ended.get(s.migrationId);
        if (ended?.outcome === 'refused') throw new FlurryError('conflict', `migration ${s.migrationId} ended on host ${this.deps.hostId}: ${ended.reason}`);
        return;
      }
      case 'apply': {
        const r = this.get(s.migrationId);
        if (s.replies) this.deps.keepReplies(r.instanceId, s.replies);
        await pool.applyPages(r.poolId, bytesToU32(s.pages), s.bytes, s.memoryBytes);
        return;
      }
      case 'settle':
        await pool.settleReceive(this.get(s.migrationId).poolId);
        return;
      case 'quiesce': {
        const r = this.get(s.migrationId);
        if (s.replies) this.deps.keepReplies(r.instanceId, s.replies);
        // Before the collection, which then takes the throwaway's garbage too.
        if (s.samples) await this.deps.warm(r.parentKey, s.samples);
        // Pages on the stream leave no garbage: after the first collection (round 0's steps, the warming's
        // throwaway clone) another would only cost the target's threads 5-100 ms of marking between rounds.
        // That one stays: without it a host's RSS grew by up to 79 MiB over the leaks test (-8..+17 with it).
        if (!r.pageStream || !r.collected) await pool.quiesceMigration(r.poolId);
        r.collected = true;
        return;
      }
      case 'commit': {
        // One at a time: the source sends one; a second must not end the first as refused.
        if (this.committing.has(s.migrationId)) throw new FlurryError('conflict', `migration ${s.migrationId} is committing already`);
        const committing = this.commit(s).finally(() => this.committing.delete(s.migrationId));
        this.committing.set(s.migrationId, committing);
        return committing;
      }
      case 'status': {
        this.sweep();
        // A commit still under way answers first (the source's request timed out while it ran, or its answer was lost).
        await this.committing.get(s.migrationId)?.catch(() => undefined);
        const ended = this.end(s.migrationId, 'the source asked for the outcome before any commit took effect');
        return ended.outcome === 'committed' ? { outcome: 'committed', ...ended.answer } : { outcome: 'refused', reason: ended.reason };
      }
      case 'abort':
        this.end(s.migrationId, 'the source aborted the migration');
        return;
    }
  }

  /**
   * The page count checked, the last pages and the globals queued as one step on the instance's thread, then
   * the instance's subject; answered once the step is queued, not once it ran (its requests are held behind
   * it): the pause no longer waits for the target's guest thread. A step that fails afterwards drops the
   * instance (`drop`), committed or not: one owner or none. With `verify` it waits for the step, to hash.
   */
  private async commit(s: Extract<ReceiveStep, { step: 'commit' }>): Promise<Answer> {
    const started = performance.now();
    const receivedAt = epochMs();
    const { pool } = this.deps;
    try {
      const ended = this.ended.get(s.migrationId);
      if (ended) throw new FlurryError('conflict', `migration ${s.migrationId} ended already on host ${this.deps.hostId} (${ended.outcome})`);
      const r = this.get(s.migrationId);
      const late = () => {
        if (Date.now() > s.expiresAt) throw new FlurryError('unavailable', `the commit of migration ${s.migrationId} came after the source stopped waiting`);
      };
      late();
      const applying = performance.now();
      const { pagesApplied, finished } = await pool.finishReceive(r.poolId, globalsFromWire(s.globals), { pages: bytesToU32(s.pages), bytes: s.bytes, memoryBytes: s.memoryBytes });
      // Every page sent was written once: a lost or repeated chunk would leave a memory the source never had (nothing ran in it yet: dropped below).
      if (pagesApplied !== s.pagesSent) {
        throw new FlurryError('internal', `the commit of migration ${s.migrationId} is refused: host ${this.deps.hostId} wrote ${pagesApplied} pages into the instance, the source sent ${s.pagesSent}`);
      }
      // Before the instance serves (and changes): what arrived, to compare with the source's memory at the stop.
      const memoryHash = s.verify ? (await finished, (await pool.instanceMemoryHash(r.poolId)).hash) : undefined;
      const applyMs = performance.now() - applying;
      late();
      // Nothing more comes on it (the commit came on it, or after the source's last frame was acknowledged).
      r.pageStream?.close();
      this.receiving.delete(s.migrationId);
      finished.catch((err: unknown) => {
        this.deps.log.error({ service: `${r.tenant}/${r.service}`, instanceId: r.instanceId, migrationId: s.migrationId, err: (err as Error).message }, 'received service instance lost: its last migration step failed after the commit');
        this.deps.drop(r.instanceId);
      });
      await this.deps.adopt({ tenant: r.tenant, service: r.service, instanceId: r.instanceId, poolId: r.poolId, parentKey: r.parentKey, init: r.init, initData: r.initData, name: r.name, digest: r.digest, replies: s.replies });
      const answer: Answer = { targetMs: { applyMs, totalMs: performance.now() - started, receivedAt, answeredAt: epochMs() }, pagesApplied, ...(memoryHash ? { memoryHash } : {}) };
      this.ended.set(s.migrationId, { outcome: 'committed', answer, at: Date.now(), instanceId: r.instanceId });
      this.wake(s.migrationId);
      this.deps.log.info({ service: `${r.tenant}/${r.service}`, instanceId: r.instanceId, migrationId: s.migrationId, pagesApplied, ms: Date.now() - r.startedAt }, 'service instance received');
      return answer;
    } catch (err) {
      this.end(s.migrationId, (err as Error).message);
      throw err;
    }
  }

  /**
   * Connects to the source's page stream: its pages frames are written into the instance as apply steps are. A
   * stream that breaks before the source finished it ends the migration here (the source's step in progress fails
   * with it, and the source resumes). False when it cannot connect: the pages then come as apply steps.
   */
  private async connectStream(migrationId: string, poolId: string, offer: StreamOffer): Promise<boolean> {
    let stream: PageStreamReader | undefined;
    try {
      stream = await PageStreamReader.connect(offer, {
        apply: (pages, bytes, memoryBytes) => this.deps.pool.applyPages(poolId, pages, bytes, memoryBytes),
        commit: async (step) => encode(await this.streamCommit(migrationId, step)),
        broken: (reason) => {
          const r = this.receiving.get(migrationId);
          if (!stream || r?.pageStream !== stream) return;
          this.deps.log.warn({ migrationId, reason }, 'migration page stream broke');
          this.end(migrationId, `its page stream broke: ${reason}`);
        },
      });
      const r = this.receiving.get(migrationId);
      if (!r || r.poolId !== poolId) {
        stream.close();
        return false;
      }
      r.pageStream = stream;
      return true;
    } catch (err) {
      this.deps.log.warn({ migrationId, host: offer.host, port: offer.port, err: (err as Error).message }, 'no migration page stream: its pages come over NATS');
      return false;
    }
  }

  /**
   * A commit that came on the page stream, behind its last pages: checked as one from NATS is (a malformed step is
   * refused), and only this migration's commit is taken.
   */
  private async streamCommit(migrationId: string, data: Uint8Array): Promise<ReceiveStepReply> {
    try {
      const step = decodeOrRefuse('ReceiveStep', data);
      if (step.step !== 'commit' || step.migrationId !== migrationId) throw new FlurryError('bad_request', `the page stream of migration ${migrationId} carried a ${step.step} step of migration ${step.migrationId}: only its own commit goes there`);
      return await this.answer(step);
    } catch (err) {
      return { ok: false, error: toWireError(err) };
    }
  }

  /** The migration will not commit here (unless it has): drops what was received, remembers it refused, and says how it ended. */
  private end(migrationId: string, reason: string): Ended {
    const r = this.receiving.get(migrationId);
    if (r) {
      r.pageStream?.close();
      this.receiving.delete(migrationId);
      this.deps.pool.destroyInstance(r.poolId);
      this.deps.releaseParent(r.parentKey);
      this.deps.forgetReplies(r.instanceId);
    }
    let ended = this.ended.get(migrationId);
    if (!ended) this.ended.set(migrationId, (ended = { outcome: 'refused', reason, at: Date.now(), ...(r ? { instanceId: r.instanceId } : {}) }));
    this.wake(migrationId);
    return ended;
  }

  /**
   * Whether migration `migrationId` of `instanceId` took effect here, once it has ended (a request its source
   * handed over with the commit waits for it: it runs here only if the commit took effect). A migration this
   * host never heard of, or of another instance, is refused as not_found. Bounded by the migration's end: its
   * commit, an abort, a status question, or its source's silence (watchSilence).
   */
  async settled(migrationId: string, instanceId: string): Promise<'committed' | 'refused'> {
    for (;;) {
      const r = this.receiving.get(migrationId);
      const ended = this.ended.get(migrationId);
      const known = r?.instanceId ?? ended?.instanceId;
      if ((!r && !ended) || (known !== undefined && known !== instanceId)) {
        throw new FlurryError('not_found', `no migration ${migrationId} of instance ${instanceId} on host ${this.deps.hostId}`);
      }
      // Set once, when the commit took effect or the migration was refused: final.
      if (ended) return ended.outcome;
      await new Promise<void>((wake) => {
        const list = this.waiting.get(migrationId) ?? [];
        if (list.length === 0) this.waiting.set(migrationId, list);
        list.push(wake);
      });
    }
  }

  private wake(migrationId: string): void {
    const list = this.waiting.get(migrationId);
    this.waiting.delete(migrationId);
    for (const wake of list ?? []) wake();
  }

  private sweep(): void {
    for (const [id, e] of this.ended) if (Date.now() - e.at > OUTCOME_MS) this.ended.delete(id);
  }

  /**
   * While migrations are received, ends each whose source has not been heard for `silentMs`: a source probes
   * its target every PROBE_EVERY_MS from the prepare to the commit, so silence means a dead, paused or cut-off
   * source, and what the migration holds here (an instance, its parent, requests handed over) is let go within
   * that bound instead of waiting for a next migration to sweep it. Time this host itself stood still (a late
   * check: a pause, a long collection) is not counted against a source, whose probes wait unread meanwhile.
   */
  private watchSilence(): void {
    if (this.silenceWatch) return;
    const every = Math.max(1, Math.floor(this.silentMs / 4));
    this.watchedAt = Date.now();
    this.silenceWatch = setInterval(() => {
      const now = Date.now();
      const stood = now - this.watchedAt - every;
      this.watchedAt = now;
      for (const [id, r] of this.receiving) {
        if (stood > every) r.heardAt += stood;
        else if (now - r.heardAt > this.silentMs) this.end(id, `its source was not heard for ${Math.round((now - r.heardAt) / 1000)} s`);
      }
      if (this.receiving.size === 0) {
        clearInterval(this.silenceWatch);
        this.silenceWatch = undefined;
      }
    }, every).unref();
  }
}
