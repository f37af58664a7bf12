/**
 * The deployment files under infra/deploy/ (docs/deploy.md) checked with the tools that read them:
 * the generated NATS files are exactly what deploy-config.js writes, nats-server accepts them (and a
 * 3-node cluster made from them forms on loopback), systemd-analyze verifies the units, and the
 * Kubernetes manifests pass the Kubernetes schemas (kubernetes-models). Each check that needs a tool
 * says why it skips when the tool is missing; each is shown to refuse a broken file.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { main as deployConfig } from './deploy-config.js';
import { deploymentSecrets, envFile, natsNodeConfigs } from './deployment.js';
import { checkManifests } from './k8s-manifests.js';
import type { NatsNodeAddress } from './nats-config.js';
import { freePort } from './free-port.js';
import { findNatsServer } from './nats-server.js';

const DEPLOY = join(dirname(fileURLToPath(import.meta.url)), '..', 'deploy');
/** The example inputs of the committed files (docs/deploy.md shows the same commands). */
const EXAMPLE_NODES = 'nats-1=10.0.0.11,nats-2=10.0.0.12,nats-3=10.0.0.13';
const EXAMPLE_HOSTS = 'worker-1,worker-2,worker-3';

const dir = mkdtempSync(join(tmpdir(), 'flurry-deploy-'));
const children: ChildProcess[] = [];
afterAll(async () => {
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  })));
  rmSync(dir, { recursive: true, force: true });
});

const natsServer = findNatsServer();
const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
function skipReason(tool: string, found: unknown): string | undefined {
  if (found) return undefined;
  console.log(`skipped: ${tool} is not installed here`);
  return tool;
}

/** Writes the example files with the generator into a fresh folder. */
function generate(name: string, ...args: string[]): string {
  const out = join(dir, name);
  const log = console.log;
  console.log = () => undefined;
  try {
    deployConfig([...args, '--out', out]);
  } finally {
    console.log = log;
  }
  return out;
}

/** `nats-server -t`: its verdict and what it said. */
function natsTest(file: string, env: Record<string, string>): { ok: boolean; output: string } {
  const r = spawnSync(natsServer!, ['-t', '-c', file], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('the NATS cluster files', () => {
  it('are exactly what deploy-config.js writes for the example inputs', () => {
    const out = generate('nats', 'nats', '--nodes', EXAMPLE_NODES, '--hosts', EXAMPLE_HOSTS);
    const committed = readdirSync(join(DEPLOY, 'nats')).sort();
    expect(readdirSync(out).sort()).toEqual(committed);
    for (const f of committed) expect(readFileSync(join(DEPLOY, 'nats', f), 'utf8'), f).toBe(readFileSync(join(out, f), 'utf8'));
    const values = generate('values.yaml', 'helm', '--replicas', '3', '--hosts', EXAMPLE_HOSTS);
    expect(readFileSync(join(DEPLOY, 'k8s', 'nats-values.yaml'), 'utf8')).toBe(readFileSync(values, 'utf8'));
  });

  it('hold no secret, and the secrets files are the owner\'s only and keep their passwords when a host is added', () => {
    const out = generate('secrets', 'secrets', '--nodes', EXAMPLE_NODES, '--hosts', 'worker-1');
    const server = parseEnvFile(join(out, 'nats-server.env'));
    for (const f of readdirSync(out)) expect(statSync(join(out, f)).mode & 0o777, f).toBe(0o600);
    for (const f of readdirSync(join(DEPLOY, 'nats'))) {
      const text = readFileSync(join(DEPLOY, 'nats', f), 'utf8');
      expect(text).toMatch(/password: \$FLURRY_NATS_PASSWORD_GATEWAY\b/);
      expect(text).not.toMatch(/nats-route:\/\//);
    }
    expect(parseEnvFile(join(out, 'host-worker-1.nats.env'))).toEqual({
      NATS_USER: 'host-worker-1', NATS_PASSWORD: server.FLURRY_NATS_PASSWORD_HOST_WORKER_1, NATS_INBOX_PREFIX: '_INBOX_host-worker-1',
    });
    generate('secrets', 'secrets', '--nodes', EXAMPLE_NODES, '--hosts', 'worker-1,worker-2');
    const again = parseEnvFile(join(out, 'nats-server.env'));
    expect(again.FLURRY_NATS_PASSWORD_HOST_WORKER_1).toBe(server.FLURRY_NATS_PASSWORD_HOST_WORKER_1);
    expect(again.FLURRY_NATS_ROUTE_PASSWORD).toBe(server.FLURRY_NATS_ROUTE_PASSWORD);
    expect(again.FLURRY_NATS_PASSWORD_HOST_WORKER_2).toMatch(/^p[A-Za-z0-9_-]{43}$/);
    expect(again.FLURRY_NATS_ROUTE_URL_NATS_2).toBe(`nats-route://route:${server.FLURRY_NATS_ROUTE_PASSWORD}@10.0.0.12:6222`);
  });

  it('refuse a kept password nats-server would read as something else', () => {
    const spec = { nodes: [{ name: 'n', host: '10.0.0.1', clientPort: 4222, clusterPort: 6222 }], hostIds: [] };
    for (const bad of ['5_x', '1k', 'true', 'a b'])
      expect(() => deploymentSecrets(spec, { FLURRY_NATS_PASSWORD_GATEWAY: bad }), bad).toThrow(/FLURRY_NATS_PASSWORD_GATEWAY in the existing secrets: nats-server would not read it back/);
  });

  it.skipIf(skipReason('nats-server', natsServer))('pass nats-server -t with the secrets in the environment, and fail naming a missing one', () => {
    const out = generate('secrets-t', 'secrets', '--nodes', EXAMPLE_NODES, '--hosts', EXAMPLE_HOSTS);
    const env = parseEnvFile(join(out, 'nats-server.env'));
    for (const f of readdirSync(join(DEPLOY, 'nats'))) {
      const r = natsTest(join(DEPLOY, 'nats', f), env);
      expect(r, f).toEqual({ ok: true, output: `nats-server: configuration file ${join(DEPLOY, 'nats', f)} is valid` });
    }
    const { FLURRY_NATS_PASSWORD_HOST_WORKER_3: _, ...missing } = env;
    const r = natsTest(join(DEPLOY, 'nats', 'nats-1.conf'), missing);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/variable reference for 'FLURRY_NATS_PASSWORD_HOST_WORKER_3'.*can not be found/);
  });

  it.skipIf(skipReason('nats-server', natsServer))('form a 3-node JetStream cluster on loopback, routes authenticated by the variables', async () => {
    const nodes: NatsNodeAddress[] = [];
    for (const name of ['nats-a', 'nats-b', 'nats-c']) nodes.push({ name, host: '127.0.0.1', clientPort: await freePort(), clusterPort: await freePort() });
    const spec = { nodes, hostIds: ['worker-1'], storeDirOf: (n: NatsNodeAddress) => join(dir, 'cluster', n.name, 'jetstream') };
    const env = deploymentSecrets(spec).server;
    const logs: string[] = [];
    for (const [file, text] of natsNodeConfigs(spec)) {
      const conf = join(dir, 'cluster', file);
      mkdirSync(dirname(conf), { recursive: true });
      writeFileSync(conf, text);
      const log = join(dir, 'cluster', `${file}.log`);
      logs.push(log);
      children.push(spawn(natsServer!, ['-c', conf, '-l', log], { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' }));
    }
    // Bounded by the cluster itself: the metadata leader needs routes between a majority of the nodes.
    const deadline = Date.now() + 15_000;
    const logged = () => logs.map((l) => (existsSync(l) ? readFileSync(l, 'utf8') : '')).join('\n');
    while (!/JetStream cluster new metadata leader/.test(logged()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(logged()).toMatch(/JetStream cluster new metadata leader/);
    expect(logged()).not.toMatch(/Authorization Violation|authentication error/);
    // A host connects with its credentials file as given to its process: the server read the password back unchanged.
    const host = deploymentSecrets(spec, env).clients.get('host-worker-1.nats.env')!;
    const servers = nodes.map((n) => `127.0.0.1:${n.clientPort}`);
    const nc = await connect({ servers, user: host.NATS_USER, pass: host.NATS_PASSWORD, inboxPrefix: host.NATS_INBOX_PREFIX, maxReconnectAttempts: 0 });
    await nc.flush();
    await nc.close();
    await expect(connect({ servers, user: host.NATS_USER, pass: `${host.NATS_PASSWORD}x`, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization Violation/i);
  });
});

/** The NATS configuration the chart's values make, the way the chart writes it: JSON, `<< x >>` unquoted. */
function chartNatsConfig(values: { config: { cluster: { merge: object }; merge: object } }): string {
  const json = JSON.stringify({
    server_name: 'nats-0',
    port: 4222,
    cluster: { name: 'nats', port: 6222, ...values.config.cluster.merge },
    jetstream: { store_dir: join(dir, 'chart-js') },
    ...values.config.merge,
  }, null, 2);
  return json.replace(/"<< (.*?) >>"/g, '$1');
}

describe('the NATS Helm values', () => {
  it.skipIf(skipReason('nats-server', natsServer))('make a NATS configuration nats-server -t accepts, with every variable in the pods\' environment', () => {
    const values = parse(readFileSync(join(DEPLOY, 'k8s', 'nats-values.yaml'), 'utf8'));
    const file = join(dir, 'chart.conf');
    writeFileSync(file, chartNatsConfig(values));
    const out = generate('secrets-helm', 'secrets', '--replicas', '3', '--hosts', EXAMPLE_HOSTS);
    const env = parseEnvFile(join(out, 'nats-server.env'));
    // The chart's pods get exactly the secrets file's variables, each from the Secret flurry-nats.
    expect(Object.keys(values.container.env).sort()).toEqual(Object.keys(env).sort());
    for (const [name, ref] of Object.entries(values.container.env)) expect(ref).toEqual({ valueFrom: { secretKeyRef: { name: 'flurry-nats', key: name } } });
    expect(natsTest(file, env)).toEqual({ ok: true, output: `nats-server: configuration file ${file} is valid` });
    expect(env.FLURRY_NATS_ROUTE_URL_NATS_1).toBe(`nats-route://route:${env.FLURRY_NATS_ROUTE_PASSWORD}@nats-1.nats-headless:6222`);
    expect(values.config.jetstream).toMatchObject({ enabled: true, fileStore: { enabled: true } });
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
  });
});

describe('the systemd units', () => {
  const units = join(DEPLOY, 'systemd');
  const debianNatsUnit = '/lib/systemd/system/nats-server.service';

  /** Verifies units in a folder of their own, where systemd-analyze also reads the drop-ins beside them. */
  function verify(files: string[]): string {
    const r = spawnSync(systemdAnalyze!, ['verify', '--man=no', ...files], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.trim() + (r.status === 0 ? '' : `\n(exit ${r.status})`);
  }

  // ExecStart must name an executable: /usr/bin/node, where Debian's nodejs puts it; verify requires it.
  it.skipIf(skipReason('systemd-analyze', systemdAnalyze) || skipReason('/usr/bin/node (the units\' ExecStart)', existsSync('/usr/bin/node')))('pass systemd-analyze verify with their drop-ins, without a warning', () => {
    const tree = join(dir, 'units');
    cpSync(units, tree, { recursive: true });
    const files = [join(tree, 'flurry-gateway.service'), join(tree, 'flurry-host.service')];
    // The nats-server drop-in extends Debian's unit: verified on it when nats-server's package is installed.
    if (existsSync(debianNatsUnit)) {
      cpSync(debianNatsUnit, join(tree, 'nats-server.service'));
      files.push(join(tree, 'nats-server.service'));
    } else console.log(`skipped nats-server.service.d/flurry.conf: ${debianNatsUnit} (Debian's nats-server package) is not installed`);
    expect(verify(files)).toBe('');
  });

  it.skipIf(skipReason('systemd-analyze', systemdAnalyze))('would report a mistyped setting, a bad value and a missing program', () => {
    const bad = join(dir, 'bad-units');
    mkdirSync(join(bad, 'flurry-host.service.d'), { recursive: true });
    const text = readFileSync(join(units, 'flurry-host.service'), 'utf8');
    writeFileSync(join(bad, 'flurry-host.service'), text.replace('ProtectSystem=strict', 'ProtectSytem=strict').replace('/usr/bin/node', '/usr/bin/no-such-node'));
    writeFileSync(join(bad, 'flurry-host.service.d', 'x.conf'), '[Service]\nRestart=sometimes\n');
    const out = verify([join(bad, 'flurry-host.service')]);
    expect(out).toMatch(/Unknown key 'ProtectSytem'/);
    expect(out).toMatch(/x\.conf:2: Failed to parse service restart specifier/);
    expect(out).toMatch(/\/usr\/bin\/no-such-node is not executable/);
  });
});

/**
 * The runbook's userfaultfd options, tried as an unprivileged user (nobody) the way the host probes them
 * (worker-host/src/native/pager.ts): access to /dev/userfaultfd (the udev rule; here a device node of
 * nobody's group bound over it in a private mount namespace, leaving the machine's as it is), ambient
 * CAP_SYS_PTRACE (the drop-in), and neither (user-mode-only). The sysctl is machine-wide: not flipped here.
 */
describe('the userfaultfd options of the worker host', () => {
  const pagerModule = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'worker-host', 'dist', 'native', 'pager.js');
  const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const probe = `const s = (await import(${JSON.stringify(pagerModule)})).nativePagerStatus(); console.log(JSON.stringify({ pager: s.pager, via: s.capabilities?.via }));`;
  const why = process.getuid?.() !== 0 ? 'root (to run as another user and bind a device node)'
    : !['/usr/bin/setpriv', '/usr/bin/unshare'].every((p) => existsSync(p)) ? 'setpriv and unshare (util-linux)'
    : !existsSync('/dev/userfaultfd') ? '/dev/userfaultfd (kernel >= 6.1)'
    : !existsSync(join(dirname(pagerModule), '..', '..', 'native', 'build', 'Release', 'flurry_pager.node')) ? 'the native pager addon (npm run setup builds it)'
    : undefined;
  if (why) console.log(`skipped: the userfaultfd options need ${why}`);

  function pagerAs(cmd: string[]): { pager: string; via: string } {
    return JSON.parse(execFileSync(cmd[0]!, [...cmd.slice(1), process.execPath, '--input-type=module', '-e', probe], { encoding: 'utf8' }));
  }

  it.skipIf(why)('give the syscall with CAP_SYS_PTRACE, the device with its group, and user-mode-only with neither', () => {
    expect(pagerAs(['setpriv', ...nobody])).toEqual({ pager: 'userfaultfd', via: 'user-mode-only' });
    expect(pagerAs(['setpriv', ...nobody, '--inh-caps=+sys_ptrace', '--ambient-caps=+sys_ptrace'])).toEqual({ pager: 'userfaultfd', via: 'syscall' });
    const node = join(dir, 'userfaultfd');
    const bind = `mknod ${node} c 10 257 && chgrp 65534 ${node} && chmod 0660 ${node} && mount --bind ${node} /dev/userfaultfd && exec "$@"`;
    expect(pagerAs(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', bind, 'sh', 'setpriv', ...nobody])).toEqual({ pager: 'userfaultfd', via: 'dev' });
    // The rule the runbook installs grants exactly that: the flurry group, read and write.
    expect(readFileSync(join(DEPLOY, 'udev', '60-flurry-userfaultfd.rules'), 'utf8')).toMatch(/^KERNEL=="userfaultfd", GROUP="flurry", MODE="0660"$/m);
  });
});

describe('the Kubernetes manifests', () => {
  const manifests = readdirSync(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('.yaml') && f !== 'nats-values.yaml');

  it('pass the Kubernetes schemas, and name every kind the runbook applies', async () => {
    const kinds: string[] = [];
    for (const f of manifests) {
      const text = readFileSync(join(DEPLOY, 'k8s', f), 'utf8');
      expect(await checkManifests(text), f).toEqual([]);
      for (const doc of text.split(/^---$/m)) kinds.push(`${parse(doc).kind}/${parse(doc).metadata.name}`);
    }
    expect(kinds.sort()).toEqual([
      'ConfigMap/flurry-gateway', 'ConfigMap/flurry-host', 'DaemonSet/flurry-host', 'Deployment/flurry-gateway',
      'Namespace/flurry', 'PodDisruptionBudget/flurry-gateway', 'Service/flurry-gateway',
    ]);
  });

  it('refuse a broken manifest: wrong types, a missing required field, an unknown kind', async () => {
    const host = readFileSync(join(DEPLOY, 'k8s', 'worker-host.yaml'), 'utf8');
    const broken = host.replace('terminationGracePeriodSeconds: 60', 'terminationGracePeriodSeconds: a minute').replace('- name: host\n', '- \n');
    const problems = await checkManifests(broken);
    expect(problems.join('\n')).toMatch(/DaemonSet flurry-host: .*terminationGracePeriodSeconds must be integer/);
    expect(problems.join('\n')).toMatch(/containers\/0 must have required property name/);
    expect(await checkManifests('apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: x}\n')).toEqual(['Deploymnt x: no schema for apiVersion apps/v1, kind Deploymnt']);
  });

  it('give the worker host what userfaultfd and a drain need', () => {
    const ds = readFileSync(join(DEPLOY, 'k8s', 'worker-host.yaml'), 'utf8').split(/^---$/m).map((d) => parse(d)).find((d) => d.kind === 'DaemonSet');
    const pod = ds.spec.template.spec;
    expect(pod.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['SYS_PTRACE'] });
    expect(pod.containers[0].securityContext.allowPrivilegeEscalation).toBe(false);
    const config = parse(readFileSync(join(DEPLOY, 'k8s', 'worker-host.yaml'), 'utf8').split(/^---$/m)[0]!);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(config.data.FLURRY_DRAIN_TIMEOUT_MS));
    // Its start script names the host after its node, and stops with a clear message without credentials for it.
    const start = spawnSync('/bin/sh', ['-c', pod.containers[0].args[0]], { env: { PATH: process.env.PATH, NODE_NAME: 'ip-10-0-3-7.ec2.internal' }, encoding: 'utf8' });
    expect({ status: start.status, stderr: start.stderr }).toEqual({
      status: 2, stderr: 'flurry-host: no NATS credentials for host ip-10-0-3-7-ec2-internal: add key ip-10-0-3-7-ec2-internal to the Secret flurry-hosts\n',
    });
  });
});

function parseEnvFile(file: string): Record<string, string> {
  const text = readFileSync(file, 'utf8');
  const vars = Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  expect(envFile(vars)).toBe(text);
  return vars;
}

// The generator's own run, as an operator types it: exit code 2 and the usage on a bad argument.
describe('deploy-config.js', () => {
  it('stops with a clear message and exit code 2 on a bad argument', () => {
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'deploy-config.js');
    const r = spawnSync(process.execPath, [cli, 'nats', '--nodes', 'nats-1=10.0.0.11:99999', '--hosts', 'w', '--out', join(dir, 'x')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^deploy-config: --nodes: bad port in "nats-1=10.0.0.11:99999"\nusage:/);
    const helm = spawnSync(process.execPath, [cli, 'helm', '--replicas', '3', '--hosts', 'w', '--release', 'queue', '--out', join(dir, 'v.yaml')], { encoding: 'utf8' });
    expect(helm.status).toBe(1);
    expect(helm.stderr).toMatch(/release "queue": give a release name containing "nats"/);
    expect(execFileSync(process.execPath, [cli, 'helm', '--replicas', '3', '--hosts', 'w', '--out', join(dir, 'v.yaml')], { encoding: 'utf8' })).toMatch(/^wrote /);
  });
});
