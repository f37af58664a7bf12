// The `npm start` supervisor on a real local fleet (nats-server, a gateway,
// two host processes): a SIGKILLed host or gateway is started again with the
// same id and port, and the gateway lists the host again; stopping restarts
// nothing. Then the launcher itself (infra/dist/fleet.js): a killed host comes
// back, and Ctrl-C (SIGINT to its whole process group, as a terminal sends it)
// stops everything without a restart. The policy itself is tested in
// infra/src/supervisor.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { freePort } from '../infra/src/free-port.js';
import { repoRoot } from '../infra/src/services.js';
import { superviseFleet, type Supervisor } from '../infra/src/supervisor.js';
import { until } from './helpers/gateway-api.js';

/** The hosts the gateway at `url` lists, or undefined while it does not answer. */
async function listedHosts(url: string, apiKey?: string): Promise<HostRecord[] | undefined> {
  const res = await fetch(`${url}/v1/hosts`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} }).catch(() => undefined);
  if (!res?.ok) return undefined;
  return ((await res.json()) as { hosts: HostRecord[] }).hosts;
}

/** Whether a process with this pid still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Short waits, so that the suite does not sit in back-offs; the policy's own numbers are unit-tested. */
const POLICY = { initialDelayMs: 200, maxDelayMs: 2000, healthyAfterMs: 10_000 };

describe('supervisor', () => {
  let fleet: LocalFleet;
  let supervisor: Supervisor;
  const log: string[] = [];

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 2,
      hostEnv: { FLURRY_GUEST_THREADS: '1', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
    });
    supervisor = superviseFleet(fleet, (line) => log.push(line), POLICY);
  });

  afterAll(async () => {
    await supervisor?.stop();
    await fleet?.stop();
  });

  const pidOf = (hostId: string) => fleet.hosts.find((h) => h.ready.hostId === hostId)!.process.pid;

  it('host killed - a SIGKILLed host is started again with its id, and the gateway lists it with its new pid', async () => {
    const oldPid = pidOf('host-1');
    fleet.hosts.find((h) => h.ready.hostId === 'host-1')!.process.kill('SIGKILL');
    const listed = await until('the gateway to list host-1 run by a new process', async () => {
      const host = (await listedHosts(fleet.url))?.find((h) => h.id === 'host-1');
      return host && host.pid !== oldPid && host.pid === pidOf('host-1') ? host : undefined;
    }, 30_000);
    expect(listed.pid).not.toBe(oldPid);
    expect(fleet.hosts.map((h) => h.ready.hostId).sort()).toEqual(['host-1', 'host-2']);
    const text = log.join('\n');
    expect(text).toContain('host host-1 was killed by SIGKILL');
    expect(text).toContain('starting host host-1 again in 0.2 s');
    expect(text).toMatch(/host host-1 is running again \(pid \d+\)/);
  });

  it('gateway killed - the gateway is started again on its port and answers GET /v1/hosts with every host', async () => {
    const oldPid = fleet.gateway.process.pid;
    const url = fleet.url;
    fleet.gateway.process.kill('SIGKILL');
    const hosts = await until('the restarted gateway to list both hosts', async () => {
      if (fleet.gateway.process.pid === oldPid) return undefined;
      const listed = await listedHosts(fleet.url);
      return listed?.length === 2 ? listed : undefined;
    }, 30_000);
    expect(fleet.url).toBe(url);
    expect(hosts.map((h) => h.id).sort()).toEqual(['host-1', 'host-2']);
    expect(log.join('\n')).toContain('gateway was killed by SIGKILL');
  });

  it('stop - once the supervisor is stopped, the processes the fleet stops are not started again', async () => {
    await supervisor.stop();
    const lines = log.length;
    await fleet.stop();
    for (const svc of [fleet.gateway, ...fleet.hosts]) expect(svc.process.exitCode !== null || svc.process.signalCode !== null).toBe(true);
    // Past the first back-off: a restart would have been logged by now.
    await new Promise((r) => setTimeout(r, POLICY.initialDelayMs * 2));
    expect(log.slice(lines)).toEqual([]);
  });
});

describe('npm start launcher', () => {
  it('launcher - a SIGKILLed host comes back; Ctrl-C stops every process and restarts none', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'flurry-launcher-'));
    const url = `http://127.0.0.1:${port}`;
    // Its own process group, so that SIGINT can go to the launcher and its children at once, like Ctrl-C in a terminal.
    const launcher = spawn(process.execPath, [join(repoRoot, 'infra', 'dist', 'fleet.js')], {
      // FLURRY_CONFIG: the launcher writes its CLI context there, not in the user's config.
      env: { ...process.env, PORT: String(port), FLURRY_HOSTS: '1', FLURRY_DATA_DIR: dataDir, FLURRY_CONFIG: join(dataDir, 'config.yaml'), NATS_URL: '', FLURRY_GUEST_THREADS: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    launcher.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    launcher.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
    try {
      await until('the launcher to print that the fleet is up', async () => {
        if (launcher.exitCode !== null) throw new Error(`the launcher exited with code ${launcher.exitCode}:\n${stdout}\n${stderr}`);
        return stdout.includes('Ctrl-C stops the fleet.') ? true : undefined;
      }, 60_000);
      // The launcher made an admin key in its state folder and printed it; without it the gateway answers 401.
      const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
      expect(stdout).toContain(key);
      expect((await fetch(`${url}/v1/hosts`)).status).toBe(401);
      const [first] = (await listedHosts(url, key))!;
      process.kill(first.pid, 'SIGKILL');
      const again = await until('the launcher to start host-1 again', async () => {
        const host = (await listedHosts(url, key))?.find((h) => h.id === 'host-1' && h.pid !== first.pid);
        return host && alive(host.pid) ? host : undefined;
      }, 30_000);
      expect(stderr).toContain('flurry: host host-1 was killed by SIGKILL');
      // The gateway can list the new host before the launcher has its ready message: wait for the restart to be over.
      await until('the launcher to say host-1 runs again', async () => (stderr.includes(`flurry: host host-1 is running again (pid ${again.pid})`) ? true : undefined), 30_000);
      const beforeStop = stderr.length;
      process.kill(-launcher.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(stdout).toContain('flurry: stopping');
      expect(stderr.slice(beforeStop)).not.toMatch(/again|failed/);
      expect(alive(again.pid)).toBe(false);
      expect(await fetch(`${url}/v1/hosts`).then(() => 'answered', () => 'refused')).toBe('refused');
    } finally {
      if (launcher.exitCode === null && launcher.signalCode === null) process.kill(-launcher.pid!, 'SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
