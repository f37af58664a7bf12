/**
 * Sends HTTP calls to functions over NATS. A call goes to the function
 * version's queue group; when nobody is in it, the function is placed first.
 * When calls in flight outgrow the guest slots of the hosts holding it warm,
 * one more host is warmed in the background so load spreads.
 */
import { RequestError, TimeoutError } from '@nats-io/transport-node';
import { decode, encode, FlurryError, Subjects, type Fabric, type FunctionRecord, type InvokeReply, type InvokeRequest, type Logger } from '@flurry/core';
import type { FleetView } from './fleet-view.js';
import { isWarmOn, rankHostsFor, type Placement } from './placement.js';

export type InvokeResult = Extract<InvokeReply, { ok: true }>;

export class Invoker {
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly placement: Placement,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  async invoke(fn: FunctionRecord, req: InvokeRequest): Promise<InvokeResult> {
    const key = `${fn.tenant}.${fn.name}@${fn.digest}`;
    const n = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, n);
    this.maybeSpread(fn, n, req.requestId);
    try {
      return await this.send(fn, req);
    } finally {
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
    }
  }

  private async send(fn: FunctionRecord, req: InvokeRequest): Promise<InvokeResult> {
    const subject = Subjects.invoke(fn.tenant, fn.name, fn.digest);
    const payload = encode(req);
    for (let attempt = 0; ; attempt++) {
      let data: Uint8Array;
      try {
        data = (await this.fabric.nc.request(subject, payload, { timeout: this.timeoutMs })).data;
      } catch (err) {
        if (err instanceof RequestError && err.isNoResponders() && attempt < 3) {
          await this.placement.place(fn, req.requestId);
          continue;
        }
        if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
          throw new FlurryError('timeout', `no answer from the fleet within ${this.timeoutMs} ms`);
        }
        if (err instanceof RequestError && err.isNoResponders()) throw new FlurryError('unavailable', `function "${fn.name}" could not be placed`, { retryAfterSeconds: 1 });
        throw err;
      }
      const reply = decode<InvokeReply>(data);
      if (!reply.ok) {
        // The host's warm parent vanished between routing and the call (evicted, draining): place again.
        if (reply.error.code === 'not_found' && attempt < 3) {
          await this.placement.place(fn, req.requestId);
          continue;
        }
        throw FlurryError.fromWire(reply.error);
      }
      return reply;
    }
  }

  /** Warms one more host when calls in flight exceed the slots of the hosts holding the function. */
  private maybeSpread(fn: FunctionRecord, inFlight: number, requestId: string): void {
    if (this.placement.placing(fn)) return;
    const hosts = this.fleet.live();
    const warmSlots = hosts.filter((h) => isWarmOn(h, fn) && !h.draining).reduce((s, h) => s + h.guestSlots, 0);
    if (warmSlots === 0 || inFlight <= warmSlots) return;
    if (rankHostsFor(fn, hosts).length === 0) return;
    this.placement.place(fn, requestId).catch((err: unknown) => this.log.warn({ requestId, err: (err as Error).message }, 'spreading placement failed'));
  }
}
