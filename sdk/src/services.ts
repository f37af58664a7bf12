/**
 * `flurry.services`: long-lived services, each `min`..`max` persistent instances of one
 * function that the gateway scales and routes `/svc/:name/...` requests to; and the live
 * migration of one instance to another host.
 */
import { toBase64 } from './base64.js';
import { readLogs, type GuestLogLine, type LogOptions } from './logs.js';
import type { HttpRequest, Transport } from './transport.js';
import type { MigrationReport, ServiceRecord } from './types.js';

/**
 * A service to create. `init` (bytes, or a string as UTF-8) is the init input of the parent
 * every instance is cloned from; it belongs to the service for good.
 *
 * @example
 * const spec: ServiceSpec = { name: 'chat', function: 'room', init: '{"ballastMiB":8}', max: 8 };
 */
export interface ServiceSpec {
  name: string;
  /** The deployed function's name. */
  function: string;
  init?: Uint8Array | string;
  /** Or the name of uploaded data (`flurry.data.put`) as the init input. */
  initData?: string;
  /** Instances kept at least (default 1; 0 allowed). */
  min?: number;
  /** Instances at most (default `min`, at most 64). */
  max?: number;
  /** Requests in flight per instance the autoscaler aims at (default 8). */
  targetConcurrency?: number;
}

/**
 * New bounds of a service; what is left out stays. Raising `min` above `max` raises `max` with it.
 *
 * @example
 * await flurry.services.update('chat', { min: 2, max: 16 });
 */
export interface ServiceScale {
  min?: number;
  max?: number;
  targetConcurrency?: number;
}

/**
 * Where and how to migrate an instance.
 *
 * @example
 * const opts: MigrateOptions = { target: 'host-b', maxRounds: 0 }; // stop-and-copy only
 */
export interface MigrateOptions {
  /** The host to move to; default: the live, non-draining host with most free guest slots. */
  target?: string;
  /** Stop pre-copy once the dirty pages would take at most this long to send (default 5). */
  downtimeBudgetMs?: number;
  /** Pre-copy rounds at most (default 30); 0: stop first, then copy all memory while paused. */
  maxRounds?: number;
}

/**
 * The services API. Reach it as `flurry.services`.
 *
 * @example
 * await flurry.services.create({ name: 'chat', function: 'room', max: 8 });
 * const [first] = (await flurry.services.get('chat')).instances;
 * const report = await flurry.services.migrate(first.id, { target: 'host-b' });
 */
export class ServicesApi {
  constructor(private readonly transport: Transport) {}

  /** Creates the service; it answers at once and starts `min` instances in the background. */
  async create(spec: ServiceSpec): Promise<ServiceRecord> {
    const { init, ...rest } = spec;
    const body = { ...rest, init: init === undefined ? undefined : toBase64(typeof init === 'string' ? new TextEncoder().encode(init) : init) };
    return (await this.transport.json<{ service: ServiceRecord }>(jsonRequest('POST', '/v1/services', body))).service;
  }

  /** Every service of the tenant, with its instances. */
  async list(): Promise<ServiceRecord[]> {
    return (await this.transport.json<{ services: ServiceRecord[] }>({ method: 'GET', path: '/v1/services' })).services;
  }

  async get(name: string): Promise<ServiceRecord> {
    return (await this.transport.json<{ service: ServiceRecord }>({ method: 'GET', path: servicePath(name) })).service;
  }

  /** Changes the bounds; resolves once instances up to the new `min` exist and those above the new `max` are gone. */
  async update(name: string, scale: ServiceScale): Promise<ServiceRecord> {
    return (await this.transport.json<{ service: ServiceRecord }>(jsonRequest('PATCH', servicePath(name), scale))).service;
  }

  /**
   * What the service's instances logged: the last lines kept, or with `follow: true` those and
   * each new line as it is stored.
   *
   * @example
   * for (const line of await flurry.services.logs('chat', { since: '1h' })) console.log(line.instanceId, line.message);
   */
  logs(name: string, options: LogOptions & { follow: true }): AsyncGenerator<GuestLogLine>;
  logs(name: string, options?: LogOptions & { follow?: false }): Promise<GuestLogLine[]>;
  logs(name: string, options: LogOptions & { follow?: boolean } = {}): Promise<GuestLogLine[]> | AsyncGenerator<GuestLogLine> {
    return readLogs(this.transport, `${servicePath(name)}/logs`, options);
  }

  /** Deletes the service once its instances are destroyed. */
  async delete(name: string): Promise<void> {
    await this.transport.json<{ deleted: string }>({ method: 'DELETE', path: servicePath(name) });
  }

  /** Moves a live instance (memory and globals) to another host; resolves with what the migration did. */
  async migrate(instanceId: string, options: MigrateOptions = {}): Promise<MigrationReport> {
    const path = `/v1/instances/${encodeURIComponent(instanceId)}/migrate`;
    return (await this.transport.json<{ migration: MigrationReport }>(jsonRequest('POST', path, options))).migration;
  }
}

function jsonRequest(method: string, path: string, body: object): HttpRequest {
  return { method, path, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(JSON.stringify(body)) };
}

function servicePath(name: string): string {
  return `/v1/services/${encodeURIComponent(name)}`;
}
