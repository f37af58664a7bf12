/** The gateway's settings, read once from an environment passed in. */
import { CALL_LIMIT_BOUNDS, EnvReader, parseStoreLimits, readJsReplicas, readMetricsListener, readNatsAuth, type MetricsListenerOptions, type NatsAuth, type StoreLimits } from '@flurry/core';
import { loadCallbackConfig, type CallbackConfig } from './callbacks/callback-config.js';
import { loadKeyRing } from './auth/key-sources.js';
import type { KeyRing } from './auth/key-ring.js';
import { loadTenantQuotas, type TenantQuotas } from './quotas/tenant-quotas.js';

export interface GatewayConfig {
  natsServers: string[];
  /** NATS_USER / NATS_PASSWORD / NATS_INBOX_PREFIX (a server with permissions: infra/src/nats-permissions.ts). */
  natsAuth?: NatsAuth;
  port: number;
  host: string;
  /** Largest request body accepted (deploys and invocations). */
  maxBodyBytes: number;
  maxModuleBytes: number;
  /** Largest job data upload (PUT /v1/data/:name), streamed into the object store. */
  maxDataBytes: number;
  maxGuestMemoryBytes: number;
  /** The hosts' output limit (FLURRY_MAX_OUTPUT, the same value): the most a function's limits.outputBytes may be. */
  maxOutputBytes: number;
  /** How long the gateway waits for a host to answer a call (the host's own guest timeout comes first). */
  invokeTimeoutMs: number;
  /** Calls go straight to hosts over call channels where they can (FLURRY_CALL_CHANNELS, on by default). */
  callChannels: boolean;
  /** How long a placement (fetch, compile, init) may take. */
  placeTimeoutMs: number;
  hostTtlSeconds: number;
  /** A service instance whose host is silent this long past its TTL is replaced (its state lost); a host back sooner keeps it. */
  instanceLostMs: number;
  /** The gateway exits (its supervisor restarts it) after the broker has been unreachable this long; 0: never. */
  natsMaxOutageMs: number;
  /** How long the job coordinator's lease lasts without renewal (a standby takes over after it). */
  jobLeaseTtlMs: number;
  /** How long the services controller's lease lasts without renewal. */
  controllerLeaseTtlMs: number;
  /** The autoscaler removes instances only after load asked for fewer this long (docs/autoscaling.md). */
  scaleInCooldownMs: number;
  /** Period of consolidation rounds; 0 turns consolidation off. */
  consolidateMs: number;
  /** Service instances one host takes. */
  hostInstances: number;
  /** The API keys' digests, tenants and roles (auth/key-sources.ts); or none, with FLURRY_AUTH=none. */
  auth: KeyRing;
  /** Job callbacks: signing secret, allowed addresses, retries (docs/jobs.md, "Callbacks"). */
  callbacks: CallbackConfig;
  /** Per-tenant quotas (FLURRY_QUOTA_*). */
  quotas: TenantQuotas;
  /** Byte limits of the JetStream stores (FLURRY_STORE_MAX_BYTES). */
  storeLimits: StoreLimits;
  /** Copies of every JetStream store created (FLURRY_JS_REPLICAS: 1 on a single nats-server, 3 on a cluster). */
  jsReplicas: number;
  /** Where /metrics is served (FLURRY_METRICS_PORT, FLURRY_METRICS_LISTEN); none: metrics are not served. */
  metrics?: MetricsListenerOptions;
  logLevel: string;
}

export function loadGatewayConfig(env: Record<string, string | undefined>): GatewayConfig {
  const r = new EnvReader(env);
  return {
    natsServers: r.natsServers('NATS_URL', 'nats://127.0.0.1:4222'),
    natsAuth: readNatsAuth(r),
    port: r.int('PORT', 8080, { min: 0, max: 65535 }),
    host: r.string('FLURRY_LISTEN', '127.0.0.1'),
    maxBodyBytes: r.bytes('FLURRY_MAX_BODY', 4 * 1024 * 1024, { min: 1024, max: 6 * 1024 * 1024 }),
    maxModuleBytes: r.bytes('FLURRY_MAX_MODULE', 64 * 1024 * 1024, { min: 1024, max: 1024 ** 3 }),
    maxDataBytes: r.bytes('FLURRY_MAX_DATA_BYTES', 1024 ** 3, { min: 1024, max: 64 * 1024 ** 3 }),
    maxGuestMemoryBytes: r.bytes('FLURRY_MAX_GUEST_MEMORY', 1024 ** 3, { min: 65536, max: 4 * 1024 ** 3 }),
    maxOutputBytes: r.bytes('FLURRY_MAX_OUTPUT', 4 * 1024 * 1024, CALL_LIMIT_BOUNDS.outputBytes),
    invokeTimeoutMs: r.int('FLURRY_INVOKE_TIMEOUT_MS', 15_000, { min: 10, max: 3_600_000 }),
    callChannels: r.oneOf('FLURRY_CALL_CHANNELS', ['on', 'off'] as const, 'on') === 'on',
    placeTimeoutMs: r.int('FLURRY_PLACE_TIMEOUT_MS', 70_000, { min: 10, max: 3_600_000 }),
    hostTtlSeconds: r.int('FLURRY_HOST_TTL_S', 5, { min: 1, max: 3600 }),
    instanceLostMs: r.int('FLURRY_INSTANCE_LOST_MS', 10_000, { min: 0, max: 24 * 3_600_000 }),
    natsMaxOutageMs: r.int('FLURRY_NATS_MAX_OUTAGE_MS', 600_000, { min: 0, max: 7 * 24 * 3_600_000 }),
    jobLeaseTtlMs: r.int('FLURRY_JOB_LEASE_MS', 5000, { min: 1000, max: 600_000 }),
    controllerLeaseTtlMs: r.int('FLURRY_CONTROLLER_LEASE_MS', 5000, { min: 1000, max: 600_000 }),
    scaleInCooldownMs: r.int('FLURRY_SCALE_IN_COOLDOWN_MS', 30_000, { min: 0, max: 3_600_000 }),
    consolidateMs: r.int('FLURRY_CONSOLIDATE_MS', 10_000, { min: 0, max: 3_600_000 }),
    hostInstances: r.int('FLURRY_HOST_INSTANCES', 16, { min: 1, max: 4096 }),
    auth: loadKeyRing(env),
    callbacks: loadCallbackConfig(env),
    quotas: loadTenantQuotas(r),
    storeLimits: parseStoreLimits(r.optionalString('FLURRY_STORE_MAX_BYTES')),
    jsReplicas: readJsReplicas(r),
    metrics: readMetricsListener(r),
    logLevel: r.logLevel('LOG_LEVEL'),
  };
}
