#!/usr/bin/env node
/**
 * Writes a deployment's NATS files (docs/deploy.md), from the same code that configures a local fleet's server:
 *
 *   node infra/dist/deploy-config.js nats --nodes nats-1=10.0.0.11,nats-2=10.0.0.12,nats-3=10.0.0.13 --hosts worker-1,worker-2 --out DIR
 *     each node's configuration, DIR/<node>.conf (no secret in it)
 *   node infra/dist/deploy-config.js helm --replicas 3 --hosts worker-1,worker-2 --out FILE [--release nats] [--secret flurry-nats] [--storage 64Gi]
 *     the official NATS chart's values
 *   node infra/dist/deploy-config.js secrets (--nodes ... | --replicas 3 [--release nats]) --hosts ... --out DIR
 *     DIR/nats-server.env (every node's variables) and one credentials file per process (gateway.nats.env,
 *     host-<id>.nats.env, admin.nats.env), mode 0600; run again with more hosts, it keeps the passwords it made.
 *
 * Arguments are parsed with node:util's parseArgs; a bad one stops it with exit code 2 and a message.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs, parseEnv } from 'node:util';
import { CLIENT_PORT, CLUSTER_PORT, deploymentSecrets, envFile, helmChartNodes, helmValues, natsNodeConfigs } from './deployment.js';
import type { NatsNodeAddress } from './nats-config.js';

class UsageError extends Error {}

const USAGE = `usage:
  deploy-config.js nats    --nodes NAME=ADDR[:CLIENT_PORT[:CLUSTER_PORT]],... --hosts ID,... --out DIR
  deploy-config.js helm    --replicas N --hosts ID,... --out FILE [--release nats] [--secret flurry-nats] [--storage 64Gi]
  deploy-config.js secrets (--nodes ... | --replicas N [--release nats]) --hosts ID,... --out DIR`;

export function main(argv: string[]): void {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      hosts: { type: 'string' },
      out: { type: 'string' },
      replicas: { type: 'string' },
      release: { type: 'string', default: 'nats' },
      secret: { type: 'string', default: 'flurry-nats' },
      storage: { type: 'string', default: '64Gi' },
    },
  });
  const [command, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const out = required(values.out, '--out');
  const hostIds = list(required(values.hosts, '--hosts'));
  switch (command) {
    case 'nats': {
      const files = natsNodeConfigs({ nodes: parseNodes(required(values.nodes, '--nodes')), hostIds });
      mkdirSync(out, { recursive: true });
      for (const [name, text] of files) writeFileSync(join(out, name), text);
      report(out, [...files.keys()]);
      return;
    }
    case 'helm': {
      const text = helmValues({ release: values.release, replicas: replicas(values.replicas), hostIds, secretName: values.secret, storageSize: values.storage });
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, text);
      console.log(`wrote ${out}`);
      return;
    }
    case 'secrets': {
      if ((values.nodes === undefined) === (values.replicas === undefined)) throw new UsageError('secrets: give either --nodes or --replicas (the chart\'s pods)');
      const nodes = values.nodes !== undefined ? parseNodes(values.nodes) : helmChartNodes(values.release, replicas(values.replicas));
      const serverFile = join(out, 'nats-server.env');
      const existing = existsSync(serverFile) ? parseEnv(readFileSync(serverFile, 'utf8')) as Record<string, string> : {};
      const secrets = deploymentSecrets({ nodes, hostIds }, existing);
      mkdirSync(out, { recursive: true, mode: 0o700 });
      writeSecret(serverFile, envFile(secrets.server));
      for (const [name, vars] of secrets.clients) writeSecret(join(out, name), envFile(vars));
      report(out, ['nats-server.env', ...secrets.clients.keys()]);
      return;
    }
    default:
      throw new UsageError(command ? `unknown command "${command}"` : 'no command');
  }
}

/** `nats-1=10.0.0.11` or `nats-1=10.0.0.11:4222:6222` (an IPv6 address in brackets). */
function parseNodes(text: string): NatsNodeAddress[] {
  return list(text).map((item) => {
    const m = /^([^=]+)=(\[[^\]]+\]|[^:\[\]]+)(?::(\d+))?(?::(\d+))?$/.exec(item);
    if (!m) throw new UsageError(`--nodes: "${item}" is not NAME=ADDRESS[:CLIENT_PORT[:CLUSTER_PORT]]`);
    const port = (s: string | undefined, fallback: number) => {
      const n = s === undefined ? fallback : Number(s);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--nodes: bad port in "${item}"`);
      return n;
    };
    return { name: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), clientPort: port(m[3], CLIENT_PORT), clusterPort: port(m[4], CLUSTER_PORT) };
  });
}

function replicas(text: string | undefined): number {
  const n = Number(required(text, '--replicas'));
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError('--replicas must be 1 to 9');
  return n;
}

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

function writeSecret(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  // The mode given to writeFileSync applies only to a file it creates.
  chmodSync(file, 0o600);
}

function report(dir: string, files: string[]): void {
  console.log(`wrote ${files.map((f) => join(dir, f)).join(', ')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`deploy-config: ${(err as Error).message}`);
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(USAGE);
      process.exit(2);
    }
    process.exit(1);
  }
}
