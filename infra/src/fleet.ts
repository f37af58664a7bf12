/**
 * `npm start`: a local fleet in the foreground. Starts nats-server (unless
 * NATS_URL is set), the gateway on PORT (default 8080) and FLURRY_HOSTS worker
 * hosts (default 2), deploys the bundled example functions, prints where to
 * look, restarts a gateway or host that exits on its own, and stops
 * everything on Ctrl-C. The gateway requires API keys: a local admin key is
 * made on the first start and kept in the state folder (local-admin-key.ts),
 * where the CLI finds it; FLURRY_AUTH=none runs without keys instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, EnvReader, withoutCredentials } from '@flurry/core';
import { ensureLocalAdminKey } from './local-admin-key.js';
import { ADMIN_CREDENTIALS_FILE, LocalFleet } from './local-fleet.js';
import { repoRoot } from './services.js';
import { superviseFleet } from './supervisor.js';

/** Bundled functions deployed at start so the printed example works at once. */
const EXAMPLES = ['echo', 'json-transform', 'wordfreq', 'pattern', 'quant', 'render', 'blast', 'room'];

function loadFleetConfig(env: Record<string, string | undefined>) {
  const r = new EnvReader(env);
  return {
    hosts: r.int('FLURRY_HOSTS', 2, { min: 1, max: 64 }),
    port: r.int('PORT', 8080, { min: 1, max: 65535 }),
    natsUrl: r.optionalString('NATS_URL'),
    dataDir: r.string('FLURRY_DATA_DIR', join(repoRoot, '.flurry')),
    verbose: r.oneOf('FLURRY_VERBOSE', ['0', '1'] as const, '0') === '1',
    withoutKeys: r.oneOf('FLURRY_AUTH', ['keys', 'none'] as const, 'keys') === 'none',
  };
}

async function main(): Promise<void> {
  const config = loadFleetConfig(process.env);
  const admin = config.withoutKeys ? undefined : ensureLocalAdminKey(config.dataDir);
  console.log(`flurry: starting ${config.natsUrl ? `with nats at ${withoutCredentials(config.natsUrl)}` : 'nats-server'}, a gateway and ${config.hosts} worker hosts (logs in ${join(config.dataDir, 'logs')})`);
  const fleet = await LocalFleet.start({
    hosts: config.hosts,
    natsUrl: config.natsUrl,
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
  console.log(`  nats      ${withoutCredentials(fleet.natsUrl)}${fleet.credentials ? ` (users and permissions; admin credentials in ${join(config.dataDir, ADMIN_CREDENTIALS_FILE)})` : ''}`);
  console.log(`  hosts     ${fleet.url}/v1/hosts`);
  console.log(`  functions ${EXAMPLES.join(', ')} (deployed)`);
  if (admin) {
    console.log(`  api key   ${admin.key}`);
    console.log(`            admin of tenant "default"${admin.created ? ', made now' : ''}; kept in ${admin.keyPath} (the CLI finds it there)`);
  } else {
    console.log('  api key   none: FLURRY_AUTH=none, every caller is admin of tenant "default"');
  }
  console.log('');
  const auth = admin ? ` -H "Authorization: Bearer $(cat ${admin.keyPath})"` : '';
  console.log(`  try:  curl -s${auth} '${fleet.url}/fn/echo/hello?x=1' -d 'hi there'`);
  // The CLI looks for the key in .flurry/ from the working directory up; a state folder elsewhere must be named.
  const cliEnv = admin && config.dataDir !== join(repoRoot, '.flurry') ? `FLURRY_DATA_DIR=${config.dataDir} ` : '';
  console.log(`        ${cliEnv}node sdk/dist/cli.js --url ${fleet.url} hosts`);
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

main().catch((err: unknown) => {
  console.error(`flurry: ${withoutCredentials(err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err))}`);
  process.exit(1);
});
