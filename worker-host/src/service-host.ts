/**
 * The host side of services (docs/services.md): makes persistent instances of
 * a function version (warming its parent here first when needed), answers
 * HTTP requests on each instance's own subject, and destroys instances.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  decode, encode, FlurryError, ServiceSubjects, toWireError,
  type CreateInstanceReply, type CreateInstanceRequest, type DestroyInstanceReply, type DestroyInstanceRequest,
  type HostServiceInstance, type InvokeReply, type InvokeRequest, type Logger, type PlaceReply, type PlaceRequest,
} from '@flurry/core';
import type { GuestPool } from './guest/guest-pool.js';

interface HostedInstance {
  tenant: string;
  service: string;
  instanceId: string;
  /** The pool's own id of the instance. */
  poolId: string;
  sub: Subscription;
  requests: number;
}

export interface ServiceHostDeps {
  hostId: string;
  nc: NatsConnection;
  pool: GuestPool;
  log: Logger;
  /** Warms the function version on this host (as placement does); resolves once it is warm. */
  ensureWarm: (req: PlaceRequest) => Promise<PlaceReply>;
  /** The pool key of a warm function version. */
  warmKey: (tenant: string, name: string, digest: string) => string;
  draining: () => boolean;
}

export class ServiceHost {
  private readonly instances = new Map<string, HostedInstance>();
  private readonly subs: Subscription[] = [];
  private inFlight = 0;

  constructor(private readonly deps: ServiceHostDeps) {}

  start(): void {
    const { nc, hostId } = this.deps;
    this.subs.push(
      nc.subscribe(ServiceSubjects.create(hostId), { callback: (_e, msg) => void this.onCreate(msg) }),
      nc.subscribe(ServiceSubjects.destroy(hostId), { callback: (_e, msg) => void this.onDestroy(msg) }),
    );
  }

  /** The instances this host holds (for its heartbeat). */
  list(): HostServiceInstance[] {
    return [...this.instances.values()].map(({ tenant, service, instanceId, requests }) => ({ tenant, service, instanceId, requests }));
  }

  get running(): number {
    return this.inFlight;
  }

  private async onCreate(msg: Msg): Promise<void> {
    let reply: CreateInstanceReply;
    try {
      const req = decode<CreateInstanceRequest>(msg.data);
      reply = await this.create(req);
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    msg.respond(encode(reply));
  }

  private async create(req: CreateInstanceRequest): Promise<CreateInstanceReply> {
    const started = performance.now();
    if (this.deps.draining()) return { ok: false, error: { code: 'unavailable', message: `host ${this.deps.hostId} is draining` } };
    if (!/^[\w-]{1,64}$/.test(req.instanceId)) return { ok: false, error: { code: 'bad_request', message: `bad instance id "${req.instanceId}"` } };
    if (this.instances.has(req.instanceId)) return { ok: true, hostId: this.deps.hostId, instanceId: req.instanceId, createMs: 0 };
    const placed = await this.deps.ensureWarm({ requestId: req.requestId, tenant: req.tenant, name: req.name, digest: req.digest });
    if (!placed.ok) return placed;
    const poolId = await this.deps.pool.createInstance(this.deps.warmKey(req.tenant, req.name, req.digest), req.requestId);
    const sub = this.deps.nc.subscribe(ServiceSubjects.request(req.tenant, req.service, req.instanceId), {
      callback: (_e, m) => void this.onRequest(m, req.instanceId),
    });
    this.instances.set(req.instanceId, { tenant: req.tenant, service: req.service, instanceId: req.instanceId, poolId, sub, requests: 0 });
    await this.deps.nc.flush();
    const createMs = performance.now() - started;
    this.deps.log.info({ requestId: req.requestId, service: `${req.tenant}/${req.service}`, instanceId: req.instanceId, createMs: Math.round(createMs * 100) / 100 }, 'service instance created');
    return { ok: true, hostId: this.deps.hostId, instanceId: req.instanceId, createMs };
  }

  private onDestroy(msg: Msg): void {
    let existed = false;
    try {
      const req = decode<DestroyInstanceRequest>(msg.data);
      existed = this.destroy(req.instanceId);
    } catch {
      // A bad message destroys nothing.
    }
    msg.respond(encode({ ok: true, hostId: this.deps.hostId, existed } satisfies DestroyInstanceReply));
  }

  destroy(instanceId: string): boolean {
    const inst = this.instances.get(instanceId);
    if (!inst) return false;
    this.instances.delete(instanceId);
    inst.sub.unsubscribe();
    this.deps.pool.destroyInstance(inst.poolId);
    this.deps.log.info({ service: `${inst.tenant}/${inst.service}`, instanceId }, 'service instance destroyed');
    return true;
  }

  private async onRequest(msg: Msg, instanceId: string): Promise<void> {
    const inst = this.instances.get(instanceId);
    let reply: InvokeReply;
    this.inFlight++;
    try {
      if (!inst) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
      inst.requests++;
      const req = decode<InvokeRequest>(msg.data);
      const r = await this.deps.pool.instanceHandle(inst.poolId, { method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body }, req.requestId);
      if (r.logs.length > 0) {
        const glog = this.deps.log.child({ requestId: req.requestId, service: `${inst.tenant}/${inst.service}`, instanceId });
        for (const line of r.logs) glog[line.level]({ guest: true }, line.message);
      }
      reply = { ok: true, status: r.status, headers: r.headers, body: r.body, hostId: this.deps.hostId, durationMs: r.durationMs };
    } catch (err) {
      if (!(err instanceof FlurryError)) this.deps.log.error({ err, instanceId }, 'service request failed');
      reply = { ok: false, error: toWireError(err), hostId: this.deps.hostId };
    } finally {
      this.inFlight--;
    }
    msg.respond(encode(reply));
  }

  /** Stops answering and destroys every instance (drain). */
  close(): void {
    for (const s of this.subs) s.unsubscribe();
    for (const id of [...this.instances.keys()]) this.destroy(id);
  }
}
