/**
 * The gateway's record shapes, as the SDK's public types: each is the type
 * openapi-typescript generated from the gateway's /openapi.json
 * (api-types.gen.ts; `npm run api-types` writes it again, and
 * test/openapi.test.ts fails while it differs from the document), so the
 * SDK never holds a copy of its own. Times are milliseconds since the Unix
 * epoch, durations milliseconds, sizes bytes.
 */
import type { components } from './api-types.gen.js';

type Schemas = components['schemas'];

/**
 * Error codes the gateway puts in `{ "error": { "code" } }` and in the `x-flurry-error` header.
 *
 * @example
 * if (err instanceof FlurryApiError && err.code === 'no_capacity') await sleep(err.retryAfterSeconds ?? 1);
 */
export type ErrorCode = Schemas['ErrorCode'];

/**
 * Uploaded data (`flurry.data`), usable as a job's `initData`.
 *
 * @example
 * const d: DataRecord = await flurry.data.put('db.fasta', bytes); // d.digest: 'sha256:…'
 */
export type DataRecord = Schemas['DataRecord'];

/**
 * A deployed function.
 *
 * @example
 * const fn: FunctionRecord = await flurry.functions.get('hello');
 * console.log(fn.digest.slice(0, 12), fn.exports.includes('handle'));
 */
export type FunctionRecord = Schemas['FunctionRecord'];

/**
 * A function's own limits, each within the fleet's cap; one left out is the fleet's default.
 *
 * @example
 * await flurry.functions.setLimits('resize', { timeoutMs: 2000, outputBytes: 1024 * 1024 });
 */
export type FunctionLimits = Schemas['FunctionLimits'];

/**
 * What every caller sees of a worker host: its capacity figures (all that a `user` API key
 * gets from `hosts.list()`).
 *
 * @example
 * const free = (await flurry.hosts.list()).reduce((n, h) => n + h.guestSlots - h.runningGuests, 0);
 */
export type HostCapacity = Schemas['HostCapacity'];

/**
 * A worker host as it last reported itself, as an `admin` API key sees it: its capacity and
 * what it holds for every tenant.
 *
 * @example
 * const hosts = await flurry.hosts.list();
 * if (isFullHostRecord(hosts[0])) console.log(hosts[0].hostname, hosts[0].warm.length);
 */
export type HostRecord = Schemas['HostRecord'];

/**
 * A function a host holds a warm parent of.
 *
 * @example
 * const warmHosts = hosts.filter((h) => h.warm.some((w: WarmFunction) => w.name === 'hello'));
 */
export type WarmFunction = Schemas['WarmFunction'];

/**
 * Where a job stands. `done`, `failed` and `cancelled` are final.
 *
 * @example
 * const finished = (['done', 'failed', 'cancelled'] as JobState[]).includes(job.state);
 */
export type JobState = Schemas['JobState'];

/**
 * A platform error as a job or clone record carries it.
 *
 * @example
 * if (job.error) console.error(`${job.error.code}: ${job.error.message}`);
 */
export type JobErrorInfo = Schemas['ErrorInfo'];

/**
 * Where a clone's memory pages came from: already on the host, multicast by the parent's
 * memory server, asked for by this host alone, or all-zero.
 *
 * @example
 * const fetched = (p: PageCounts) => p.multicast + p.unicast;
 */
export type PageCounts = Schemas['PageCounts'];

/**
 * One clone of a job. `startMs` is a time, `runMs` a duration.
 *
 * @example
 * const slowest = job.clonesDetail.reduce((a, b) => ((b.runMs ?? 0) > (a.runMs ?? 0) ? b : a));
 */
export type CloneDetail = Schemas['CloneDetail'];

/**
 * A fork-join job: one snapshot of a warm parent, forked into `clones` clones.
 *
 * @example
 * const job: JobRecord = await flurry.jobs.get('job-1');
 * console.log(job.state, `${job.counts.done}/${job.clones}`);
 */
export type JobRecord = Schemas['JobRecord'];

/**
 * The delivery of a job's callback: `pending` until a 2xx answer (`delivered`) or until every
 * attempt has failed (`failed`).
 *
 * @example
 * const { callback } = await flurry.jobs.get(id);
 * if (callback?.state === 'failed') console.error(`callback: ${callback.lastStatus ?? ''} ${callback.lastError}`);
 */
export type CallbackOutcome = Schemas['CallbackOutcome'];

/**
 * A long-lived service: `min`..`max` persistent instances of one function version, each a
 * clone of a parent booted with `init`.
 *
 * @example
 * const svc: ServiceRecord = await flurry.services.get('chat');
 * console.log(svc.instances.map((i) => `${i.id}@${i.host}`).join(' '));
 */
export type ServiceRecord = Schemas['ServiceRecord'];

/**
 * One instance of a service and the host that holds it.
 *
 * @example
 * const busiest = svc.instances.reduce((a, b) => (b.inFlight > a.inFlight ? b : a));
 */
export type ServiceInstance = Schemas['ServiceInstance'];

/**
 * What a live migration of a service instance did (docs/services.md, "Migration").
 *
 * @example
 * const report: MigrationReport = await flurry.services.migrate('inst-1', { target: 'host-b' });
 * console.log(`${report.rounds.length} rounds, paused ${report.downtimeMs} ms`);
 */
export type MigrationReport = Schemas['MigrationReport'];

/**
 * One instance moved by the services controller (a consolidation or a drain), and why.
 *
 * @example
 * const failed = (await flurry.hosts.consolidation()).moves.filter((m: HostMove) => !m.ok);
 */
export type HostMove = Schemas['HostMove'];

/**
 * The answer of a host drain: every instance moved away, or why one could not be (the host then
 * stays `draining`).
 *
 * @example
 * const drain: HostDrainReport = await flurry.hosts.drain('host-2');
 * if (drain.failed.length > 0) console.error(drain.failed[0].error);
 */
export type HostDrainReport = Schemas['HostDrainReport'];

/**
 * The services controller's view: each host's state, and its latest moves of the caller's
 * instances, newest last.
 *
 * @example
 * const { hosts } = await flurry.hosts.consolidation();
 * const releasable = hosts.filter((h) => h.releasable).map((h) => h.id);
 */
export type ConsolidationState = Schemas['ConsolidationState'];

/**
 * The JSON body of `POST /v1/jobs` as it goes on the wire (bytes as base64): what `jobs.submit()` sends.
 *
 * @example
 * const body: JobBody = { function: 'pi', clones: 16, input: btoa('{"samples":1000000}') };
 */
export type JobBody = Schemas['JobBody'];

/**
 * One line a guest logged, with what ran: a function call (`function`), a job's clone
 * (`jobId`, `clone`: its index, or `reduce`) or a service request (`service`, `instanceId`).
 *
 * @example
 * for (const line of await flurry.functions.logs('resize')) console.log(new Date(line.at), line.level, line.message);
 */
export type GuestLogLine = Schemas['GuestLogLine'];
