/**
 * `npm run bench -- invoke`: HTTP calls to the echo function through the
 * gateway and a fleet of worker hosts, against the same function called
 * directly in this process through a guest pool (the baseline), at 1 and 64
 * concurrent clients. Reports p50/p99 latency, requests per second, and the
 * latency the fleet adds.
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { createLogger } from '@flurry/core';
import { GuestPool } from '@flurry/worker-host';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { closedLoop, round, summarize } from './stats.js';
import { option } from './options.js';

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const seconds = option(args, 'seconds', 5);
  const hosts = option(args, 'hosts', 2);
  const threads = option(args, 'threads', availableParallelism());
  const body = Buffer.from('{"hello":"flurry"}');
  const echo = new Uint8Array(readFileSync(join(repoRoot, 'functions/build/echo.wasm')));

  // Baseline: the same guest, same pool code, called in-process.
  const pool = await GuestPool.start({
    threads,
    limits: { callTimeoutMs: 10_000, initTimeoutMs: 60_000, maxOutputBytes: 4 << 20, maxLogLines: 64, maxLogBytes: 65536 },
    log: createLogger('bench', {}, 'warn'),
  });
  await pool.warm('echo', echo);
  const req = { method: 'POST', path: '/bench', query: 'a=1', headers: [['content-type', 'application/json']] as [string, string][], body };
  const direct = async () => {
    await pool.handle('echo', req, 'bench');
  };
  const direct1 = await closedLoop(direct, 1, seconds * 1000);
  const direct64 = await closedLoop(direct, 64, seconds * 1000);
  await pool.close();

  const fleet = await LocalFleet.start({ hosts, hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads) }, gatewayEnv: { LOG_LEVEL: 'warn' } });
  try {
    const deployed = await fetch(`${fleet.url}/v1/functions/echo`, { method: 'PUT', body: echo as Uint8Array<ArrayBuffer> });
    if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
    const url = new URL('/fn/echo/bench?a=1', fleet.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 128 });
    const viaFleet = () =>
      new Promise<void>((resolve, reject) => {
        const r = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
          res.on('data', () => {});
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        });
        r.on('error', reject);
        r.end(body);
      });
    await viaFleet(); // places the warm parent
    const fleet1 = await closedLoop(viaFleet, 1, seconds * 1000);
    const fleet64 = await closedLoop(viaFleet, 64, seconds * 1000);
    agent.destroy();

    const d1 = summarize(direct1.latencies);
    const d64 = summarize(direct64.latencies);
    const f1 = summarize(fleet1.latencies);
    const f64 = summarize(fleet64.latencies);
    const rows = [
      ['direct (in-process pool)', 1, d1, direct1.rps, direct1.errors],
      ['direct (in-process pool)', 64, d64, direct64.rps, direct64.errors],
      ['gateway + NATS + host', 1, f1, fleet1.rps, fleet1.errors],
      ['gateway + NATS + host', 64, f64, fleet64.rps, fleet64.errors],
    ] as const;
    if (!args.includes('--quiet')) {
      console.log(`invoke: echo function, ${seconds} s per run, ${hosts} hosts x ${threads} guest threads, ${availableParallelism()} cores`);
      console.log('path                       clients    p50 ms    p99 ms        rps  errors');
      for (const [name, c, s, rps, errors] of rows) {
        console.log(`${name.padEnd(26)} ${String(c).padStart(7)} ${s.p50Ms.toFixed(3).padStart(9)} ${s.p99Ms.toFixed(3).padStart(9)} ${rps.toFixed(0).padStart(10)} ${String(errors).padStart(7)}`);
      }
      console.log(`added at the median, 1 client: ${(f1.p50Ms - d1.p50Ms).toFixed(3)} ms (fleet/direct p50 ratio ${(f1.p50Ms / d1.p50Ms).toFixed(2)}x)`);
      console.log(`throughput at 64 clients: fleet/direct ${(fleet64.rps / direct64.rps).toFixed(2)}x`);
    }
    return {
      bench: 'invoke',
      hosts,
      threads,
      seconds,
      p50Ms: round(f1.p50Ms),
      p99Ms: round(f1.p99Ms),
      rps: round(fleet1.rps, 0),
      p50Ms64: round(f64.p50Ms),
      p99Ms64: round(f64.p99Ms),
      rps64: round(fleet64.rps, 0),
      directP50Ms: round(d1.p50Ms),
      directP99Ms: round(d1.p99Ms),
      directRps: round(direct1.rps, 0),
      directP50Ms64: round(d64.p50Ms),
      directRps64: round(direct64.rps, 0),
      addedP50Ms: round(f1.p50Ms - d1.p50Ms),
      errors: fleet1.errors + fleet64.errors + direct1.errors + direct64.errors,
    };
  } finally {
    await fleet.stop();
  }
}
