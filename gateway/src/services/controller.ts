/**
 * The services controller (docs/autoscaling.md): the autoscaler,
 * consolidation and host drains, run by the one gateway replica that holds
 * the `controller` lease in `flurry_controller_lease` (lease.ts; the job
 * coordinator holds its own). While it leads it
 *
 * - reads every gateway's load reports (`flurry.svc.load`) and lets the
 *   autoscaler react to each at once, and re-checks every service each tick
 *   (scale-in after the cool-down);
 * - runs a consolidation round every `consolidateMs` (0: never);
 * - answers drain requests (`flurry.controller.drain`) from the API and from
 *   hosts that received SIGTERM.
 *
 * Consolidation rounds, drains and scale-ins run one at a time (a round
 * must not move an instance that a scale-in removes); scale-outs never wait.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import {
  ControllerSubjects, listen, openKv, serve,
  type DrainHostReply, type DrainHostRequest, type Fabric, type HostRecord, type Logger, type ServiceLoadReport,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { Lease } from '../lease.js';
import { Autoscaler } from './autoscaler.js';
import { StandbyParents } from './standby-parents.js';
import { Consolidator } from '../hosts/consolidator.js';
import { FleetLoad } from './fleet-load.js';
import { drainHost } from '../hosts/host-drain.js';
import { setHostState } from '../hosts/host-state.js';
import { InstanceMover } from '../hosts/instance-mover.js';
import type { Journal } from '../hosts/journal.js';
import type { Services } from './services.js';

const LEASE_KEY = 'controller';
/** How often every service is re-checked (scale-in, min) besides the load reports. */
const TICK_MS = 250;
/** How often the list of services is read again. */
const LIST_MS = 2000;

export interface ControllerOptions {
  leaseTtlMs: number;
  scaleInCooldownMs: number;
  /** Period of consolidation rounds; 0 turns consolidation off. */
  consolidateMs: number;
  hostInstances: number;
}

export class ServicesController {
  private readonly lease: Lease;
  private readonly load = new FleetLoad();
  private readonly autoscaler: Autoscaler;
  private readonly consolidator: Consolidator;
  private readonly mover: InstanceMover;
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private known: { tenant: string; name: string }[] = [];
  private listedAt = 0;
  /** Consolidation rounds and drains, one after another. */
  private moving: Promise<unknown> = Promise.resolve();
  private consolidating = false;

  private constructor(
    private readonly fabric: Fabric,
    private readonly services: Services,
    private readonly fleet: FleetView,
    private readonly log: Logger,
    private readonly opts: ControllerOptions,
    leaseKv: KV,
    journal: Journal,
  ) {
    this.lease = new Lease(leaseKv, LEASE_KEY, opts.leaseTtlMs, log, { onGain: () => this.lead(), onLose: () => this.stepDown() }, fabric.link);
    this.mover = new InstanceMover(services.migrations, journal, log);
    const reactivate = (hosts: HostRecord[], reason: string) => this.reactivate(hosts, reason);
    this.autoscaler = new Autoscaler({ store: services.store, scaling: services.scaling, fleet, load: this.load, log, cooldownMs: opts.scaleInCooldownMs, hostInstances: opts.hostInstances, reactivate,
      standby: new StandbyParents(fabric.nc, log),
      exclusive: (work) => this.exclusive(work),
    });
    this.consolidator = new Consolidator({
      fabric, store: services.store, fleet, load: this.load, autoscaler: this.autoscaler, mover: this.mover, log, hostInstances: opts.hostInstances, quietMs: opts.scaleInCooldownMs,
    });
  }

  static async open(fabric: Fabric, services: Services, fleet: FleetView, journal: Journal, log: Logger, opts: ControllerOptions): Promise<ServicesController> {
    const leaseKv = await openKv(fabric, 'controllerLease', { ttlMs: opts.leaseTtlMs });
    return new ServicesController(fabric, services, fleet, log, opts, leaseKv, journal);
  }

  get leader(): boolean {
    return this.lease.held;
  }

  start(): void {
    this.lease.start();
  }

  async stop(): Promise<void> {
    await this.lease.stop();
  }

  private lead(): void {
    const { nc } = this.fabric;
    const { log } = this;
    this.subs.push(
      listen(nc, 'load', ControllerSubjects.load, (report) => this.onLoad(report), { log }),
      serve(nc, 'controllerDrain', ControllerSubjects.drain, (req) => this.onDrain(req), { log }),
      serve(nc, 'controllerExiting', ControllerSubjects.allExiting, (req, msg) => this.onDrain(req, msg.subject.slice(ControllerSubjects.exiting('').length)), { log }),
    );
    this.timers.push(setInterval(() => void this.tick(), TICK_MS));
    if (this.opts.consolidateMs > 0) this.timers.push(setInterval(() => this.consolidate(), this.opts.consolidateMs));
    this.log.info({ ...this.opts }, 'services controller leading');
  }

  private stepDown(): void {
    for (const s of this.subs) s.unsubscribe();
    for (const t of this.timers) clearInterval(t);
    this.subs = [];
    this.timers = [];
  }

  private onLoad(report: ServiceLoadReport): void {
    for (const key of this.load.add(report)) {
      const dot = key.indexOf('.');
      this.autoscaler.evaluate(key.slice(0, dot), key.slice(dot + 1));
    }
  }

  private async tick(): Promise<void> {
    if (Date.now() - this.listedAt > LIST_MS) {
      this.listedAt = Date.now();
      try {
        const all = await this.services.store.all();
        this.known = all.map(({ record }) => ({ tenant: record.tenant, name: record.name }));
        await this.services.migrations.repairPlacements(all);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'listing services failed');
      }
    }
    for (const s of this.known) this.autoscaler.evaluate(s.tenant, s.name);
  }

  private consolidate(): void {
    if (this.consolidating) return;
    this.consolidating = true;
    this.exclusive(() => this.consolidator.tick())
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'consolidation round failed'))
      .finally(() => (this.consolidating = false));
  }

  /**
   * A drain asked for by the API, or (`exitingHost`) by a host that exits: then that host, whatever the message
   * names. What it throws is answered as a refusal (serve).
   */
  private async onDrain(asked: DrainHostRequest, exitingHost?: string): Promise<DrainHostReply> {
    const req = exitingHost === undefined ? asked : { ...asked, hostId: exitingHost, exiting: true };
    this.log.info({ hostId: req.hostId, reason: req.reason, exiting: req.exiting ?? false, requestId: req.requestId }, 'draining host');
    return this.exclusive(() => drainHost({
      fabric: this.fabric, store: this.services.store, fleet: this.fleet, mover: this.mover, log: this.log,
      hostInstances: this.opts.hostInstances, reactivate: (hosts, reason) => this.reactivate(hosts, reason),
    }, req));
  }

  private async reactivate(hosts: HostRecord[], reason: string): Promise<void> {
    await Promise.all(hosts.map(async (h) => {
      await setHostState(this.fabric, h.id, 'active', reason);
      this.consolidator.expectInstances(h.id);
      this.log.info({ hostId: h.id, reason }, 'host reactivated');
    }));
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.moving.then(work, work);
    this.moving = next.catch(() => undefined);
    return next;
  }
}
