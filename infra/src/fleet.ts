/**
 * `npm start`: a local fleet in the foreground. Starts nats-server (unless
 * NATS_URL is set), the gateway on PORT (default 8080) and FLURRY_HOSTS worker
 * hosts (default 2), deploys the bundled example functions, prints where to
 * look, restarts a gateway or host that exits on its own, and stops
 * everything on Ctrl-C.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, EnvReader } from '@flurry/core';
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
  };
}

async function main(): Promise<void> {
  const config = loadFleetConfig(process.env);
  console.log(`flurry: starting ${config.natsUrl ? `with nats at ${config.natsUrl}` : 'nats-server'}, a gateway and ${config.hosts} worker hosts (logs in ${join(config.dataDir, 'logs')})`);
  const fleet = await LocalFleet.start({
    hosts: config.hosts,
    natsUrl: config.natsUrl,
    dataDir: config.dataDir,
    gatewayPort: config.port,
    onLine: config.verbose ? (svc, line) => console.log(`[${svc}] ${line}`) : undefined,
  });
  // A gateway or host that exits on its own is started again after a back-off (supervisor.ts).
  const supervisor = superviseFleet(fleet, (line) => console.error(`flurry: ${line}`));
  for (const name of EXAMPLES) {
    const file = join(repoRoot, 'functions', 'build', `${name}.wasm`);
    if (!existsSync(file)) continue;
    const res = await fetch(`${fleet.url}/v1/functions/${name}`, { method: 'PUT', body: readFileSync(file), headers: { 'content-type': 'application/wasm' } });
    if (!res.ok) console.error(`flurry: deploying ${name} failed: ${await res.text()}`);
  }
  console.log('');
  console.log(`  gateway   ${fleet.url}`);
  console.log(`  nats      ${fleet.natsUrl}${fleet.credentials ? ` (users and permissions; admin credentials in ${join(config.dataDir, ADMIN_CREDENTIALS_FILE)})` : ''}`);
  console.log(`  hosts     ${fleet.url}/v1/hosts`);
  console.log(`  functions ${EXAMPLES.join(', ')} (deployed)`);
  console.log('');
  console.log(`  try:  curl -s '${fleet.url}/fn/echo/hello?x=1' -d 'hi there'`);
  console.log(`        node sdk/dist/cli.js --url ${fleet.url} hosts`);
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
  console.error(`flurry: ${err instanceof ConfigError ? err.message : err instanceof Error ? err.message : err}`);
  process.exit(1);
});
