#!/usr/bin/env node
/** The gateway process: `node gateway/dist/main.js`, configured by environment (see docs/configuration.md). */
import { ConfigError, createLogger, serveOnUncaught } from '@flurry/core';
import { loadGatewayConfig } from './config.js';
import { Gateway } from './gateway.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadGatewayConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`flurry-gateway: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger('gateway', { pid: process.pid }, config.logLevel);
  // The logger redacts secrets (core/src/redact.ts) as well: a NATS_URL shows without its password.
  log.info({ config: { ...config, auth: config.auth.describe() } }, 'starting');
  if (!config.auth.required) log.warn('FLURRY_AUTH=none: no API keys, every caller is admin of the default tenant; never expose this gateway beyond this machine');
  if (!config.callbacks.secrets) log.warn('no FLURRY_CALLBACK_SECRET or FLURRY_CALLBACK_SECRET_FILE: jobs with a callbackUrl are refused');
  serveOnUncaught(log);
  const gateway = await Gateway.start(config, log);
  gateway.link.onGiveUp((downMs) => {
    log.fatal({ downMs }, 'the broker has been unreachable too long (FLURRY_NATS_MAX_OUTAGE_MS); exiting so that a supervisor starts a fresh gateway');
    process.exit(1);
  });
  const stop = () => void gateway.stop().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const url = `http://${config.host}:${gateway.port}`;
  const metricsUrl = gateway.metrics && `http://${config.metrics!.host}:${gateway.metrics.port}/metrics`;
  log.info({ url, metricsUrl }, 'ready');
  // A launcher that started this process (infra/src/services.ts) waits for this message.
  process.send?.({ kind: 'ready', url, ...(metricsUrl ? { metricsUrl } : {}) });
}

main().catch((err) => {
  console.error(`flurry-gateway: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
