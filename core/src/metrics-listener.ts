/**
 * A process's Prometheus endpoint: `GET /metrics` of the process's own
 * registry on a listener of its own (FLURRY_METRICS_PORT, on
 * FLURRY_METRICS_LISTEN, 127.0.0.1 by default). Its own listener because a
 * worker host has no HTTP server, and because metrics are for the operator:
 * they name every tenant's functions, so they stay off the tenants' API
 * (docs/observability.md).
 *
 *   const registry = new Registry();                     // one per process, never prom-client's global one
 *   countReconnects(registry, fabric.link);
 *   const listener = await MetricsListener.start(registry, { port: 9100, host: '127.0.0.1' }, log);
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, type Registry } from 'prom-client';
import type { BrokerLink } from './broker-link.js';
import type { EnvReader } from './config.js';
import type { Logger } from './log.js';

/**
 * How often the event loop's delay is sampled for `nodejs_eventloop_lag_*`, ms. Each sample is a timer that wakes
 * the process; prom-client's default (10 ms) woke every idle gateway and host 100 times a second, most of an idle
 * process's CPU. The percentiles estimate how late a timer due at a random moment runs, which a coarser grid
 * samples as well, only with fewer samples (still 150 in a 15 s scrape interval).
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export interface MetricsListenerOptions {
  /** 0 picks a free port (tests, the local fleet). */
  port: number;
  host: string;
}

/** FLURRY_METRICS_PORT (absent or 0: no listener) and FLURRY_METRICS_LISTEN (default 127.0.0.1). */
export function readMetricsListener(r: EnvReader): MetricsListenerOptions | undefined {
  const port = r.int('FLURRY_METRICS_PORT', 0, { min: 0, max: 65535 });
  return port === 0 ? undefined : { port, host: r.string('FLURRY_METRICS_LISTEN', '127.0.0.1') };
}

export class MetricsListener {
  private constructor(
    private readonly server: Server,
    /** The port it listens on. */
    readonly port: number,
  ) {}

  /** Listens; also adds the process's default metrics (CPU, memory, event loop lag) to `registry`. */
  static async start(registry: Registry, opts: MetricsListenerOptions, log: Logger): Promise<MetricsListener> {
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => {
          log.warn({ err: (err as Error).message }, 'collecting metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new MetricsListener(server, (server.address() as AddressInfo).port);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** `flurry_nats_reconnects_total`: the broker connection came back after an outage. */
export function countReconnects(registry: Registry, link: BrokerLink): void {
  const reconnects = new Counter({ name: 'flurry_nats_reconnects_total', help: 'Times the connection to the NATS broker came back after it was lost', registers: [registry] });
  link.onChange((up) => {
    if (up) reconnects.inc();
  });
}
