/**
 * Every gateway publishes its requests in flight per service instance (and
 * requests held for a first instance) on `flurry.svc.load`, so that the
 * services controller on whichever replica holds its lease sees the load of
 * the whole fleet. A change is published at once unless one went out less
 * than `minIntervalMs` ago (then at the end of that interval): a burst
 * reaches the controller within milliseconds, at a bounded message rate.
 * While any count is non-zero the report is also repeated every `periodMs`,
 * so that the controller can expire the reports of a gateway that died.
 *
 * Why the gateways and not the hosts' heartbeats: the gateway sees requests
 * the moment they arrive, including those held while no instance exists yet
 * (a host never sees them), and heartbeats are KV writes once a second.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ControllerSubjects, publishTo, type ServiceLoad, type ServiceLoadReport } from '@flurry/core';

export interface LoadReporterOptions {
  minIntervalMs?: number;
  periodMs?: number;
}

export class LoadReporter {
  readonly gateway = `gw-${randomUUID().slice(0, 8)}`;
  private lastAt = 0;
  private pending?: NodeJS.Timeout;
  private readonly periodic: NodeJS.Timeout;
  private lastWasEmpty = true;
  private readonly minIntervalMs: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly load: () => ServiceLoad[],
    opts: LoadReporterOptions = {},
  ) {
    this.minIntervalMs = opts.minIntervalMs ?? 10;
    this.periodic = setInterval(() => {
      if (!this.lastWasEmpty) this.publish();
    }, opts.periodMs ?? 250);
    this.periodic.unref();
  }

  /** Something changed: publish now, or at the end of the current interval. */
  changed(): void {
    if (this.pending) return;
    const wait = this.lastAt + this.minIntervalMs - Date.now();
    if (wait <= 0) {
      // After the current event-loop turn, so that a batch of changes goes out as one report.
      this.pending = setTimeout(() => this.publish(), 0);
    } else this.pending = setTimeout(() => this.publish(), wait);
  }

  stop(): void {
    clearInterval(this.periodic);
    clearTimeout(this.pending);
  }

  private publish(): void {
    clearTimeout(this.pending);
    this.pending = undefined;
    this.lastAt = Date.now();
    const services = this.load();
    this.lastWasEmpty = services.length === 0;
    const report: ServiceLoadReport = { gateway: this.gateway, at: this.lastAt, services };
    try {
      publishTo(this.nc, 'load', ControllerSubjects.load, report);
    } catch {
      // The connection is closing (gateway stop).
    }
  }
}
