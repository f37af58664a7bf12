/**
 * `npm start`: a local fleet in the foreground. Starts nats-server (unless
 * NATS_URL is set; FLURRY_NATS_CLUSTER=3 starts a cluster of three), the gateway on PORT (default 8080) and FLURRY_HOSTS worker
 * hosts (default 2; FLURRY_NETWORK=netns puts each process in a network namespace of its own), deploys the bundled example functions, prints where to
 * look, restarts a gateway or host that exits on its own, and stops
 * everything on Ctrl-C. The gateway requires API keys: a local admin key is
 * made on the first start and kept in the state folder (local-admin-key.ts);
 * FLURRY_AUTH=none runs without keys instead. The URL and key are written as
 * the `local` context of the CLI's config file, so `flurry` reaches this fleet
 * from any folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, EnvReader, withoutCredentials } from '@flurry/core';
import { addContext, configPath, readConfig, writeConfig } from '@flurry/sdk/config';
import { ensureLocalAdminKey } from './local-admin-key.js';
import { ADMIN_CREDENTIALS_FILE, LocalFleet } from './local-fleet.js';
import { repoRoot } from './services.js';
import { superviseFleet } from './supervisor.js';

/** The CLI context `npm start` writes for the fleet it started. */
const LOCAL_CONTEXT = 'local';

/** Bundled functions deployed at start so the printed example works at once. */
const EXAMPLES = ['echo', 'json-transform', 'wordfreq', 'pattern', 'quant', 'render', 'blast', 'room'];

function loadFleetConfig(env: Record<string, string | undefined>) {
  const r = new EnvReader(env);
  return {
    hosts: r.int('FLURRY_HOSTS', 2, { min: 1, max: 64 }),
    port: r.int('PORT', 8080, { min: 1, max: 65535 }),
    natsUrl: r.optionalString('NATS_URL'),
    natsNodes: r.int('FLURRY_NATS_CLUSTER', 1, { min: 1, max: 7 }),
    network: r.oneOf('FLURRY_NETWORK', ['loopback', 'netns'] as const, 'loopback'),
    dataDir: r.string('FLURRY_DATA_DIR', join(repoRoot, '.flurry')),
    verbose: r.oneOf('FLURRY_VERBOSE', ['0', '1'] as const, '0') === '1',
    withoutKeys: r.oneOf('FLURRY_AUTH', ['keys', 'none'] as const, 'keys') === 'none',
  };
}

async function main(): Promise<void> {
  const config = loadFleetConfig(process.env);
  if (config.natsUrl && config.natsNodes > 1) throw new ConfigError('FLURRY_NATS_CLUSTER starts nats-server nodes here: unset NATS_URL, or FLURRY_NATS_CLUSTER to use that broker');
  const admin = config.withoutKeys ? undefined : ensureLocalAdminKey(config.dataDir);
  const natsStarted = config.natsNodes > 1 ? `a cluster of ${config.natsNodes} nats-server nodes` : 'nats-server';
  console.log(`flurry: starting ${config.natsUrl ? `with nats at ${withoutCredentials(config.natsUrl)}` : natsStarted}, a gateway and ${config.hosts} worker hosts (logs in ${join(config.dataDir, 'logs')})`);
  const fleet = await LocalFleet.start({
    hosts: config.hosts,
    natsUrl: config.natsUrl,
    natsCluster: config.natsNodes,
    network: config.network,
    dataDir: config.dataDir,
    gatewayPort: config.port,
    ...(admin ? { gatewayEnv: { FLURRY_API_KEYS_FILE: admin.keysFile }, apiKey: admin.key } : { gatewayEnv: { FLURRY_AUTH: 'none' } }),
    onLine: config.verbose ? (svc, line) => console.log(`[${svc}] ${line}`) : undefined,
  });
  // A gateway or host that exits on its own is started again after a back-off (supervisor.ts).
  const supervisor = superviseFleet(fleet, (line) => console.error(`flurry: ${withoutCredentials(line)}`));
  for (const name of EXAMPLES) {
    const file = join(repoRoot, 'functions', 'build', `${name}.wasm`);
    if (!existsSync(file)) continue;
    const headers: Record<string, string> = { 'content-type': 'application/wasm', ...(admin ? { authorization: `Bearer ${admin.key}` } : {}) };
    const res = await fetch(`${fleet.url}/v1/functions/${name}`, { method: 'PUT', body: readFileSync(file), headers });
    if (!res.ok) console.error(`flurry: deploying ${name} failed: ${await res.text()}`);
  }
  console.log('');
  console.log(`  gateway   ${fleet.url}`);
  const [firstUrl, ...otherUrls] = fleet.natsUrl.split(',');
  const natsNote = [config.natsNodes > 1 ? `a cluster of ${config.natsNodes}, stores replicated ${Math.min(3, config.natsNodes)} times` : '', fleet.credentials ? `users and permissions; admin credentials in ${join(config.dataDir, ADMIN_CREDENTIALS_FILE)}` : ''].filter(Boolean).join('; ');
  console.log(`  nats      ${withoutCredentials(firstUrl!)}${natsNote ? ` (${natsNote})` : ''}`);
  for (const url of otherUrls) console.log(`            ${withoutCredentials(url)}`);
  if (config.network === 'netns') console.log(`            (addresses inside the fleet's network namespaces; the gateway above is reached through its entry: docs/multi-host.md)`);
  console.log(`  hosts     ${fleet.url}/v1/hosts`);
  // Each process's Prometheus metrics, for the operator only (docs/observability.md).
  const metrics = await Promise.all(['gateway', ...fleet.hosts.map((h) => String(h.ready.hostId))].map(async (name) => `${name} ${await fleet.metricsUrl(name).catch(() => 'off')}`));
  console.log(`  metrics   ${metrics.join('\n            ')}`);
  console.log(`  functions ${EXAMPLES.join(', ')} (deployed)`);
  if (admin) {
    console.log(`  api key   ${admin.key}`);
    console.log(`            admin of tenant "default"${admin.created ? ', made now' : ''}; kept in ${admin.keyPath} (the CLI finds it there)`);
  } else {
    console.log('  api key   none: FLURRY_AUTH=none, every caller is admin of tenant "default"');
  }
  console.log('');
  const context = writeLocalContext(fleet.url, admin?.key);
  console.log(`  context   ${context.line}`);
  console.log('');
  const auth = admin ? ` -H "Authorization: Bearer $(cat ${admin.keyPath})"` : '';
  console.log(`  try:  curl -s${auth} '${fleet.url}/fn/echo/hello?x=1' -d 'hi there'`);
  console.log(`        npx flurry${context.current ? '' : ` --context ${LOCAL_CONTEXT}`} hosts`);
  console.log('');
  console.log('  Ctrl-C stops the fleet.');
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('\nflurry: stopping (hosts drain first)');
    // The supervisor first: the exits that stopping causes must not be restarted.
    supervisor.stop().then(() => fleet.stop()).then(() => process.exit(0), (err: unknown) => {
      console.error(`flurry: stop failed: ${(err as Error).message}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * Adds or updates the `local` context (this fleet's URL and admin key) in the CLI's config file;
 * it becomes the current one only when there is none, so a user's chosen context stays chosen.
 */
function writeLocalContext(url: string, key: string | undefined): { line: string; current: boolean } {
  const path = configPath(process.env);
  try {
    const config = addContext(readConfig(path), LOCAL_CONTEXT, key === undefined ? { url } : { url, key });
    writeConfig(path, config);
    const current = config.current === LOCAL_CONTEXT;
    return { line: `${LOCAL_CONTEXT}${current ? ' (current)' : ''} written to ${path}${current ? '' : `; flurry context use ${LOCAL_CONTEXT} makes it current`}`, current };
  } catch (err) {
    // The fleet runs all the same; the CLI then needs --url (and the key, from .flurry/ or --api-key).
    return { line: `not written: ${(err as Error).message}`, current: false };
  }
}

main().catch((err: unknown) => {
  console.error(`flurry: ${withoutCredentials(err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err))}`);
  process.exit(1);
});
