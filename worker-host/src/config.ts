/** The worker host's settings, read once from an environment passed in. */
import { availableParallelism, totalmem } from 'node:os';
import { CALL_LIMIT_BOUNDS, ConfigError, EnvReader, hostIdOfUser, parseStoreLimits, readJsReplicas, readMetricsListener, readNatsAuth, WASM_PAGE_SIZE, type MetricsListenerOptions, type NatsAuth, type StoreLimits } from '@flurry/core';
import { defaultInstanceThreads } from './guest/instance-threads.js';
import { LATENCY_PACING } from './migration/latency-pacing.js';

export interface HostConfig {
  natsServers: string[];
  /** NATS_USER / NATS_PASSWORD / NATS_INBOX_PREFIX (a server with permissions: infra/src/nats-permissions.ts). */
  natsAuth?: NatsAuth;
  /** Stable id for this host; generated when not given. */
  hostId?: string;
  /** Guest threads in the pool running calls, clones and inits (they never hold service instances). */
  guestThreads: number;
  /** Most threads holding service instances, started per tenant as needed (guest/instance-threads.ts). */
  instanceThreads: number;
  heartbeatMs: number;
  /** A host record expires this long after the last heartbeat. */
  hostTtlSeconds: number;
  /** The host exits (its supervisor restarts it) after the broker has been unreachable this long; 0: never. */
  natsMaxOutageMs: number;
  callTimeoutMs: number;
  initTimeoutMs: number;
  maxOutputBytes: number;
  maxGuestMemoryBytes: number;
  /** Most memory warm parents, snapshots, kept parents, page caches and service instances hold together (memory-budget.ts). */
  memoryBudgetBytes: number;
  /** Longest a drain waits for in-flight calls before giving up on them. */
  drainTimeoutMs: number;
  pager: 'auto' | 'userfaultfd' | 'portable';
  /** Kept parents of jobs (docs/jobs.md): an idle one is freed this long after its last job. */
  parentIdleMs: number;
  /** Most bytes of idle kept parents; the least recently used go first beyond it. */
  parentCacheBytes: number;
  /** Byte limits of the JetStream stores a host may be first to create (FLURRY_STORE_MAX_BYTES). */
  storeLimits: StoreLimits;
  /** Copies of every JetStream store created (FLURRY_JS_REPLICAS: 1 on a single nats-server, 3 on a cluster). */
  jsReplicas: number;
  /** Service replies kept against a request sent again (reply-table.ts): how long, and most bytes and replies on the host. */
  replyLimits: { keepMs: number; maxBytes: number; maxReplies: number };
  /** Round 0's rate of a migration's pre-copy, MiB a second (FLURRY_MIGRATION_PACE_MIB_S; 0: unpaced; migration/precopy.ts, Pacing). */
  migrationPaceMiBPerS: number;
  /** The longest a migration's round 0 waits before a slice while the instance's requests run late, ms (FLURRY_MIGRATION_YIELD_MAX_MS; 0: never; migration/latency-pacing.ts). */
  migrationYieldMaxMs: number;
  /** A migration's pages on a page stream to the target, listened for on the call channel's address (FLURRY_MIGRATION_STREAM; off: as NATS apply steps; migration/page-stream.ts). */
  migrationStream: boolean;
  /** Where /metrics is served (FLURRY_METRICS_PORT, FLURRY_METRICS_LISTEN); none: metrics are not served. */
  metrics?: MetricsListenerOptions;
  /** Where the gateway's direct call channels connect (FLURRY_CALL_CHANNEL, FLURRY_CALL_CHANNEL_ADVERTISE); none: calls come only through the broker. */
  callChannel?: { host: string; port: number; advertise?: string; threads: boolean };
  logLevel: string;
}

export function loadHostConfig(env: Record<string, string | undefined>): HostConfig {
  const r = new EnvReader(env);
  const natsAuth = readNatsAuth(r);
  // Half the machine by default: the rest is for running clones, the process itself and the page cache of the OS.
  const memoryBudgetBytes = r.bytes('FLURRY_HOST_MEMORY_BUDGET', Math.floor(machineMemoryBytes() / 2), { min: 1024 * 1024, max: 2 ** 50 });
  return {
    natsServers: r.natsServers('NATS_URL', 'nats://127.0.0.1:4222'),
    natsAuth,
    hostId: hostIdFor(r.optionalString('FLURRY_HOST_ID'), natsAuth),
    guestThreads: r.int('FLURRY_GUEST_THREADS', Math.max(2, availableParallelism()), { min: 1, max: 256 }),
    instanceThreads: r.int('FLURRY_INSTANCE_THREADS', defaultInstanceThreads(machineMemoryBytes(), memoryBudgetBytes), { min: 0, max: 4096 }),
    heartbeatMs: r.int('FLURRY_HEARTBEAT_MS', 1000, { min: 100, max: 60_000 }),
    hostTtlSeconds: r.int('FLURRY_HOST_TTL_S', 5, { min: 1, max: 3600 }),
    natsMaxOutageMs: r.int('FLURRY_NATS_MAX_OUTAGE_MS', 600_000, { min: 0, max: 7 * 24 * 3_600_000 }),
    callTimeoutMs: r.int('FLURRY_CALL_TIMEOUT_MS', 10_000, CALL_LIMIT_BOUNDS.timeoutMs),
    initTimeoutMs: r.int('FLURRY_INIT_TIMEOUT_MS', 60_000, { min: 1, max: 3_600_000 }),
    maxOutputBytes: r.bytes('FLURRY_MAX_OUTPUT', 4 * 1024 * 1024, CALL_LIMIT_BOUNDS.outputBytes),
    maxGuestMemoryBytes: r.bytes('FLURRY_MAX_GUEST_MEMORY', 1024 ** 3, { min: WASM_PAGE_SIZE, max: 4 * 1024 ** 3 }),
    memoryBudgetBytes,
    drainTimeoutMs: r.int('FLURRY_DRAIN_TIMEOUT_MS', 30_000, { min: 0, max: 3_600_000 }),
    pager: r.oneOf('FLURRY_PAGER', ['auto', 'userfaultfd', 'portable'] as const, 'auto'),
    parentIdleMs: r.int('FLURRY_PARENT_IDLE_MS', 300_000, { min: 0, max: 7 * 24 * 3_600_000 }),
    parentCacheBytes: r.int('FLURRY_PARENT_CACHE_MIB', 1024, { min: 0, max: 1024 * 1024 }) * 1024 * 1024,
    storeLimits: parseStoreLimits(r.optionalString('FLURRY_STORE_MAX_BYTES')),
    jsReplicas: readJsReplicas(r),
    migrationPaceMiBPerS: r.int('FLURRY_MIGRATION_PACE_MIB_S', 0, { min: 0, max: 100_000 }),
    migrationYieldMaxMs: r.int('FLURRY_MIGRATION_YIELD_MAX_MS', LATENCY_PACING.maxWaitMs, { min: 0, max: 1000 }),
    migrationStream: r.oneOf('FLURRY_MIGRATION_STREAM', ['on', 'off'] as const, 'on') === 'on',
    replyLimits: {
      keepMs: r.int('FLURRY_REPLY_KEEP_S', 120, { min: 1, max: 86_400 }) * 1000,
      maxBytes: r.int('FLURRY_REPLY_KEEP_MIB', 16, { min: 1, max: 64 * 1024 }) * 1024 * 1024,
      maxReplies: r.int('FLURRY_REPLY_KEEP_COUNT', 100_000, { min: 1, max: 10_000_000 }),
    },
    metrics: readMetricsListener(r),
    callChannel: readCallChannel(r),
    logLevel: r.logLevel('LOG_LEVEL'),
  };
}

/** `off`, or `host:port` to listen on (port 0: any free one); loopback by default, where a local fleet's gateway runs. */
function readCallChannel(r: EnvReader): HostConfig['callChannel'] {
  const value = r.string('FLURRY_CALL_CHANNEL', '127.0.0.1:0');
  if (value === 'off') return undefined;
  const m = /^(.+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`FLURRY_CALL_CHANNEL must be "off" or host:port, got "${value}"`);
  const advertise = r.optionalString('FLURRY_CALL_CHANNEL_ADVERTISE');
  const threads = r.string('FLURRY_CALL_THREADS', 'on');
  if (threads !== 'on' && threads !== 'off') throw new ConfigError(`FLURRY_CALL_THREADS must be "on" or "off", got "${threads}"`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port, ...(advertise ? { advertise } : {}), threads: threads === 'on' };
}

/** A host's id: FLURRY_HOST_ID, else the one its NATS user names; the two must agree (its permissions are for that id). */
function hostIdFor(given: string | undefined, auth: NatsAuth | undefined): string | undefined {
  const named = auth && hostIdOfUser(auth.user);
  if (given !== undefined && named !== undefined && given !== named) throw new ConfigError(`FLURRY_HOST_ID is "${given}" but NATS_USER "${auth!.user}" is host ${named}'s`);
  return given ?? named;
}

/** Memory this machine has, for the capacity record. */
export function machineMemoryBytes(): number {
  return totalmem();
}
