#!/usr/bin/env node
/** The worker host process: `node worker-host/dist/main.js`, configured by environment (see docs/configuration.md). */
import { ConfigError, createLogger, newId, serveOnUncaught } from '@flurry/core';
import { loadHostConfig } from './config.js';
import { WorkerHost } from './host.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadHostConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`flurry-host: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  // The id is fixed before the first log line, so that every line carries it.
  config = { ...config, hostId: config.hostId ?? newId('host') };
  const log = createLogger('worker-host', { pid: process.pid, hostId: config.hostId }, config.logLevel);
  log.info({ config }, 'starting');
  serveOnUncaught(log);
  const host = await WorkerHost.start(config, log);
  host.link.onGiveUp((downMs) => {
    log.fatal({ downMs }, 'the broker has been unreachable too long (FLURRY_NATS_MAX_OUTAGE_MS); exiting so that a supervisor starts a fresh host');
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    void host.drain(signal).then(() => process.exit(0), (err) => {
      log.error({ err }, 'drain failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const metricsUrl = host.metricsListener && `http://${config.metrics!.host}:${host.metricsListener.port}/metrics`;
  log.info({ hostId: host.id, metricsUrl }, 'ready');
  // A launcher that started this process (infra/src/services.ts) waits for this message.
  process.send?.({ kind: 'ready', hostId: host.id, ...(metricsUrl ? { metricsUrl } : {}) });
}

main().catch((err) => {
  console.error(`flurry-host: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
