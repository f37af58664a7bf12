/**
 * Supervision of a local fleet's processes (`npm start`): a gateway or worker
 * host that exits on its own is started again with the same id, port and
 * environment, after an exponential back-off, so that one crash (or a broker
 * outage a process gives up on) does not take the fleet down or leave half of
 * it. The policy is a pure function (`decideRestart`); `Supervisor` applies it
 * to running processes; `superviseFleet` wires a LocalFleet's gateway and hosts.
 *
 *   exit ──► stopping? ──yes──► nothing (the fleet is being stopped)
 *              │ no
 *              ▼
 *   ran ≥ healthyAfterMs? ──yes──► quick exits := 0
 *              │
 *              ▼
 *   wait min(maxDelayMs, initialDelayMs · 2^quickExits), quick exits + 1, start again
 *   (a start that fails counts as an exit after 0 ms)
 */
import type { LocalFleet } from './local-fleet.js';
import type { RunningService } from './services.js';

export interface BackoffPolicy {
  /** Wait before restarting a process that had run healthily (or never exited before). */
  initialDelayMs: number;
  /** The wait doubles with each exit in a row that came soon after a start, up to this. */
  maxDelayMs: number;
  /** A process that ran this long before it exited counts as healthy: the next wait is initialDelayMs again. */
  healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000, healthyAfterMs: 60_000 };

/** What the policy remembers of one process between its exits. */
export interface RestartHistory {
  /** Exits in a row, each before the process had run healthyAfterMs. */
  quickExits: number;
}

export const NO_HISTORY: RestartHistory = { quickExits: 0 };

export type RestartDecision =
  | { restart: false }
  | {
      restart: true;
      delayMs: number;
      /** To pass to the next decision about this process. */
      history: RestartHistory;
      /** It died again soon after the last restart: it keeps dying right after start. */
      crashLooping: boolean;
    };

/**
 * What to do about a process that exited after running `ranMs`. Never a
 * restart while the fleet is stopping.
 *
 * @example decideRestart(DEFAULT_BACKOFF, NO_HISTORY, { ranMs: 5000, stopping: false }) // restart in 1000 ms
 */
export function decideRestart(policy: BackoffPolicy, history: RestartHistory, exit: { ranMs: number; stopping: boolean }): RestartDecision {
  if (exit.stopping) return { restart: false };
  const earlier = exit.ranMs >= policy.healthyAfterMs ? 0 : history.quickExits;
  // The exponent stops growing once the wait is at its maximum (no Infinity after many exits).
  const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(earlier, 40));
  return { restart: true, delayMs, history: { quickExits: earlier + 1 }, crashLooping: earlier > 0 };
}

/** One process under supervision: how to start it again. */
export interface SupervisedProcess {
  /** For the log: `gateway`, `host host-1`. */
  name: string;
  /** Starts it again (same id, port, environment) once the previous process has exited. */
  restart(): Promise<RunningService>;
}

/** How a process ended, from its exit code or signal. */
function describeExit(svc: RunningService): string {
  const { exitCode, signalCode } = svc.process;
  return signalCode ? `was killed by ${signalCode}` : `exited with code ${exitCode}`;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** Restarts processes that exit on their own, by `decideRestart`, until stopped. */
export class Supervisor {
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly starting = new Set<Promise<void>>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    /** Lines of a dead process's output quoted in the log. */
    private readonly lastLines = 10,
  ) {}

  /** Watches `running`, and each process that replaces it. */
  watch(proc: SupervisedProcess, running: RunningService): void {
    this.follow(proc, running, NO_HISTORY);
  }

  private follow(proc: SupervisedProcess, svc: RunningService, history: RestartHistory): void {
    const startedAt = Date.now();
    void svc.exited.then(() => {
      const ranMs = Date.now() - startedAt;
      const decision = decideRestart(this.policy, history, { ranMs, stopping: this.stopping });
      if (!decision.restart) return;
      const tail = svc.lines.slice(-this.lastLines).join('\n');
      this.log(`${proc.name} ${describeExit(svc)} after ${seconds(ranMs)}; last lines:\n${tail || '(none)'}`);
      this.schedule(proc, decision);
    });
  }

  private schedule(proc: SupervisedProcess, decision: Extract<RestartDecision, { restart: true }>): void {
    this.log(
      decision.crashLooping
        ? `${proc.name} keeps dying right after it starts (${decision.history.quickExits} times in a row); starting it again in ${seconds(decision.delayMs)}`
        : `starting ${proc.name} again in ${seconds(decision.delayMs)}`,
    );
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopping) return;
      const started = proc.restart().then(
        (svc) => {
          this.log(`${proc.name} is running again (pid ${svc.process.pid})`);
          this.follow(proc, svc, decision.history);
        },
        (err: unknown) => {
          const next = decideRestart(this.policy, decision.history, { ranMs: 0, stopping: this.stopping });
          if (!next.restart) return;
          this.log(`${proc.name} failed to start: ${err instanceof Error ? err.message : String(err)}`);
          this.schedule(proc, next);
        },
      );
      this.starting.add(started);
      void started.finally(() => this.starting.delete(started));
    }, decision.delayMs);
    this.timers.add(timer);
  }

  /**
   * No restart from now on; resolves once the restarts already under way have
   * started their processes, so that stopping the fleet afterwards stops those too.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.starting]);
  }
}

/**
 * Supervises a LocalFleet's gateway (restarted on its port) and hosts
 * (restarted with their ids). Stop the supervisor before the fleet.
 *
 * @example const supervisor = superviseFleet(fleet, console.error); ...; await supervisor.stop(); await fleet.stop();
 */
export function superviseFleet(fleet: LocalFleet, log: (line: string) => void, policy: BackoffPolicy = DEFAULT_BACKOFF): Supervisor {
  const supervisor = new Supervisor(log, policy);
  supervisor.watch({ name: 'gateway', restart: () => fleet.restartGateway() }, fleet.gateway);
  for (const host of fleet.hosts) {
    const hostId = String(host.ready.hostId);
    supervisor.watch({ name: `host ${hostId}`, restart: () => fleet.restartHost(hostId) }, host);
  }
  return supervisor;
}
