/**
 * Sends HTTP calls to functions: straight to a host holding the version warm
 * over a direct call channel when one is open (functions/call-channels.ts),
 * else (or when that host declines it or its channel closes) through NATS to
 * the version's queue group; when nobody is in it, the function is placed first.
 * When calls in flight outgrow the guest slots of the hosts holding it warm,
 * one more host is warmed in the background so load spreads.
 *
 * Hedging: a call sent to a host that then stops heartbeating (paused, cut
 * off, dead) would wait for its whole timeout, and the queue group may go on
 * routing to that host until the broker notices it is silent. While a host
 * holding the function warm is lost, calls in flight for a while are sent
 * again (every HEDGE_AFTER_MS, at most MAX_HEDGES times); the first answer wins. A call is a
 * fresh clone of the warm parent that can touch nothing outside its answer,
 * so running it twice is invisible.
 */
import { callEncoded, decodeOrRefuse, encode, FlurryError, formatTraceparent, isCallTimeout, isNoResponders, Subjects, traceHeaders, type Fabric, type FunctionRecord, type InvokeReply, type InvokeRequest, type Logger, type TraceContext } from '@flurry/core';
import { withOutcome, type GatewayMetrics } from './metrics/gateway-metrics.js';
import type { FleetView } from './fleet-view.js';
import type { Placement } from './placement.js';
import { invokeLimitsOf } from './functions/function-limits.js';
import { isWarmOn } from './planning/host-states.js';
import { warmParentHosts } from './planning/warm-parent.js';
import { ChannelClosed, type CallChannels } from './functions/call-channels.js';

export type InvokeResult = Extract<InvokeReply, { ok: true }>;

/**
 * A call is hedged once it has waited this long while a host holding its function is lost, and again as
 * long as it waits: until the broker drops the silent host (its ping timeout), a hedge may be routed to it too.
 */
const HEDGE_AFTER_MS = 1000;
const MAX_HEDGES = 10;
/** Hosts lost longer ago than this (past their TTL) get no more hedges: the broker has dropped them by then. */
const HEDGE_WINDOW_MS = 15_000;

/** A call in flight, for hedging. */
interface Pending {
  fn: FunctionRecord;
  /** When it was last sent. */
  sentAt: number;
  hedges: number;
  hedge(): void;
}

export class Invoker {
  private readonly inFlight = new Map<string, number>();
  private readonly pending = new Set<Pending>();

  constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly placement: Placement,
    private readonly timeoutMs: number,
    private readonly log: Logger,
    private readonly metrics?: GatewayMetrics,
    private readonly channels?: CallChannels,
  ) {
    setInterval(() => this.hedgeStuckCalls(), 500).unref();
  }

  private hedgeStuckCalls(): void {
    if (this.pending.size === 0) return;
    const lost = this.fleet.recentlyLost(HEDGE_WINDOW_MS);
    if (lost.length === 0) return;
    const now = Date.now();
    let hedged = 0;
    for (const call of this.pending) {
      if (call.hedges >= MAX_HEDGES || now - call.sentAt < HEDGE_AFTER_MS) continue;
      if (!lost.some((h) => isWarmOn(h, call.fn))) continue;
      call.hedges++;
      call.sentAt = now;
      call.hedge();
      hedged++;
    }
    if (hedged > 0) this.log.warn({ calls: hedged, lostHosts: lost.map((h) => h.id) }, 'calls sent again: a host holding their function stopped heartbeating');
  }

  /** Calls the function; `trace` goes to the host in the request's headers (core/src/trace.ts). */
  async invoke(fn: FunctionRecord, req: InvokeRequest, trace?: TraceContext): Promise<InvokeResult> {
    const key = `${fn.tenant}.${fn.name}@${fn.digest}`;
    const n = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, n);
    this.maybeSpread(fn, n, req.requestId);
    // The host applies the function's own limits to this call.
    const limits = invokeLimitsOf(fn);
    try {
      return await withOutcome(() => this.send(fn, limits ? { ...req, limits } : req, trace), (outcome, seconds) => this.metrics?.call(fn.tenant, fn.name, outcome, seconds));
    } finally {
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
    }
  }

  /**
   * One call: over a call channel when one is open, else (or when it is declined or its channel closes) to the queue
   * group; sent again through the queue group by the hedger while a host holding the function is lost. The first answer wins.
   */
  private request(fn: FunctionRecord, subject: string, payload: Uint8Array, trace: TraceContext | undefined): Promise<Uint8Array> {
    // The trace's NATS headers are made only for a call that goes through the broker: most go over a channel.
    const viaBroker = () => callEncoded(this.fabric.nc, 'invoke', subject, payload, { timeoutMs: this.timeoutMs, raw: true, headers: traceHeaders(trace) });
    const viaChannel = () => {
      const channel = this.channels?.pick(fn);
      if (!channel || !channel.fits(payload.length)) return viaBroker();
      return channel.call(payload, trace ? formatTraceparent(trace) : '', this.timeoutMs).then(
        (reply) => reply ?? viaBroker(),
        // The host closed or died: a call is a fresh clone that can touch nothing outside its answer, so sending it again is invisible.
        (err: unknown) => (err instanceof ChannelClosed ? viaBroker() : Promise.reject(err)),
      );
    };
    return new Promise<Uint8Array>((resolve, reject) => {
      let outstanding = 0;
      let settled = false;
      const call: Pending = { fn, sentAt: Date.now(), hedges: 0, hedge: () => send(viaBroker) };
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        this.pending.delete(call);
        f();
      };
      const send = (how: () => Promise<Uint8Array>) => {
        outstanding++;
        how().then(
          (data) => settle(() => resolve(data)),
          (err: unknown) => {
            // A hedge that fails while another copy is still out waits for that one.
            if (--outstanding === 0) settle(() => reject(err));
          },
        );
      };
      this.pending.add(call);
      send(viaChannel);
    });
  }

  private async send(fn: FunctionRecord, req: InvokeRequest, trace: TraceContext | undefined): Promise<InvokeResult> {
    const subject = Subjects.invoke(fn.tenant, fn.name, fn.digest);
    const payload = encode(req);
    for (let attempt = 0; ; attempt++) {
      let data: Uint8Array;
      try {
        data = await this.request(fn, subject, payload, trace);
      } catch (err) {
        if (isNoResponders(err) && attempt < 3) {
          await this.placement.place(fn, req.requestId);
          continue;
        }
        if (isCallTimeout(err)) {
          throw new FlurryError('timeout', `no answer from the fleet within ${this.timeoutMs} ms`);
        }
        if (isNoResponders(err)) throw new FlurryError('unavailable', `function "${fn.name}" could not be placed`, { retryAfterSeconds: 1 });
        throw err;
      }
      const reply = decodeOrRefuse('InvokeReply', data, undefined, 'unavailable');
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
    let warmSlots = 0;
    for (const h of this.fleet.liveWarm(fn)) if (!h.draining) warmSlots += h.guestSlots;
    if (warmSlots === 0 || inFlight <= warmSlots) return;
    if (warmParentHosts(fn, this.fleet.live(), 1).length === 0) return;
    this.placement.place(fn, requestId).catch((err: unknown) => this.log.warn({ requestId, err: (err as Error).message }, 'spreading placement failed'));
  }
}
