/**
 * Starting Flurry's own processes (gateway, worker hosts) as children, each
 * with its own environment, and waiting until each says it is ready. Used by
 * the local fleet launcher, the integration tests and the benchmarks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { withoutCredentials } from '@flurry/core';
import { endingWithParent } from './parent-death.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ServiceOptions {
  natsUrl: string;
  env?: Record<string, string>;
  /** Where the service's JSON log lines go (appended); also kept in memory for tests. */
  logFile?: string;
  /** Called with each log line the service prints. */
  onLine?: (line: string) => void;
  readyTimeoutMs?: number;
  /**
   * Runs the service through another command (a network namespace: `ip netns
   * exec <ns> ...`, which execs in place, so the pid, the signals and the IPC
   * channel's file descriptor are the service's own).
   */
  wrapCommand?: (argv: string[]) => string[];
}

export interface RunningService {
  name: string;
  process: ChildProcess;
  /** Every line the service printed so far, as printed (its log file and `onLine` get them without URL credentials). */
  lines: string[];
  /** Fields of the service's `ready` message (the gateway's url, the host's id). */
  ready: Record<string, unknown>;
  /** Sends SIGTERM (a host drains first) and waits for the exit; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL: a host that dies without draining. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

function startService(name: string, script: string, opts: ServiceOptions): Promise<RunningService> {
  const argv = [process.execPath, join(repoRoot, script)];
  const [cmd, ...args] = endingWithParent(opts.wrapCommand ? opts.wrapCommand(argv) : argv);
  const child = spawn(cmd!, args, {
    env: { ...process.env, NATS_URL: opts.natsUrl, ...opts.env },
    // The IPC channel carries the service's `ready` message, whatever its log level.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let file: WriteStream | undefined;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    file = createWriteStream(opts.logFile, { flags: 'a' });
  }
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { file?.end(); resolve(code); }));
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${lines.slice(-20).join('\n')}`));
    }, opts.readyTimeoutMs ?? 30_000);
    const onLine = (printed: string) => {
      lines.push(printed);
      if (lines.length > 5000) lines.splice(0, 1000);
      // A crash's stack or a message printed outside the service's logger may quote its NATS_URL or credentials: none reaches a log file.
      const line = withoutCredentials(printed);
      file?.write(line + '\n');
      opts.onLine?.(line);
    };
    child.on('message', (msg: { kind?: string } & Record<string, unknown>) => {
      if (settled || msg?.kind !== 'ready') return;
      settled = true;
      clearTimeout(timer);
      resolve(handle(msg));
    });
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    void exited.then((code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready:\n${lines.slice(-20).join('\n')}`));
    });
  });

  function handle(ready: Record<string, unknown>): RunningService {
    return {
      name,
      process: child,
      lines,
      ready,
      exited,
      async stop(graceMs = 35_000) {
        if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(t);
        return code;
      },
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGKILL');
        await exited;
      },
    };
  }
}

export function startGateway(opts: ServiceOptions & { port?: number }): Promise<RunningService> {
  return startService('gateway', 'gateway/dist/main.js', { ...opts, env: { PORT: String(opts.port ?? 0), ...opts.env } });
}

export function startHost(opts: ServiceOptions & { hostId?: string }): Promise<RunningService> {
  return startService(`host ${opts.hostId ?? ''}`.trim(), 'worker-host/dist/main.js', { ...opts, env: { ...(opts.hostId ? { FLURRY_HOST_ID: opts.hostId } : {}), ...opts.env } });
}
