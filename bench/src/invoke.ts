/**
 * `npm run bench -- invoke`: HTTP calls to the echo function through the
 * gateway and a fleet of worker hosts, against the same function called
 * directly in this process through a guest pool (the baseline), at 1 and 64
 * concurrent clients. Reports p50/p99 latency, requests per second, and the
 * latency the fleet adds.
 *
 * The fleet's gateway requires an API key; a second gateway on the same
 * fleet runs without (FLURRY_AUTH=none). Single-client calls alternate
 * between the two in short rounds, so that both see the same machine load,
 * and the difference of their medians is what authentication costs a call.
 * A third, also without keys, has its call channels off (FLURRY_CALL_CHANNELS):
 * every call through the broker's queue group, alternated with the others.
 * The key lookup alone is also timed in this process.
 *
 * Where a single client's call goes: probes of its stages (the gateway's HTTP
 * hop alone, a NATS round trip, the call sent straight to the queue group, the
 * call sent straight to a host over a call channel of the probe's own) run
 * in the same alternated rounds, and each process's CPU time per call is read
 * from /proc (docs/benchmarks.md, "invoke"); in that loop the client also reads
 * its own wait for a core around each call, so that its own part of the 1-client
 * tail is told apart from the fleet's (`clientTail`).
 */
import { Agent, request, type OutgoingHttpHeaders } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  call as natsCall, callEncoded, callPayload, createLogger, decodeOrRefuse, encode, encodeFrame, FrameReader, FrameType, hashApiKey, newApiKey, Subjects, writeFrame,
  type InvokeRequest,
} from '@flurry/core';
import { KeyRing } from '@flurry/gateway';
import { GuestPool } from '@flurry/worker-host';
import { LocalFleet, repoRoot, startGateway } from '@flurry/infra';
import { closedLoop, round, summarize } from './stats.js';
import { ownRunQueueWait } from './own-wait.js';
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

  const keyCheckUs = keyCheckMicros(3);
  const keyCheckUs1000 = keyCheckMicros(1000);

  const key = newApiKey();
  const fleet = await LocalFleet.start({ hosts, hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads) }, gatewayEnv: { LOG_LEVEL: 'warn', FLURRY_API_KEYS: `${key}=bench` } });
  const openGateway = await startGateway({ natsUrl: fleet.natsUrl, env: { ...fleet.gatewayNatsEnv(), LOG_LEVEL: 'warn', FLURRY_AUTH: 'none' } }).catch(async (err: unknown) => {
    await fleet.stop();
    throw err;
  });
  // The same without call channels: every call through the broker's queue group, as before them.
  const brokerGateway = await startGateway({ natsUrl: fleet.natsUrl, env: { ...fleet.gatewayNatsEnv(), LOG_LEVEL: 'warn', FLURRY_AUTH: 'none', FLURRY_CALL_CHANNELS: 'off' } }).catch(async (err: unknown) => {
    await openGateway.stop(5000);
    await fleet.stop();
    throw err;
  });
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 128 });
    const caller = async (gatewayUrl: string, auth: OutgoingHttpHeaders) => {
      const deployed = await fetch(`${gatewayUrl}/v1/functions/echo`, { method: 'PUT', body: echo as Uint8Array<ArrayBuffer>, headers: auth as Record<string, string> });
      if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
      const url = new URL('/fn/echo/bench?a=1', gatewayUrl);
      const call = () =>
        new Promise<void>((resolve, reject) => {
          const r = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, ...auth } }, (res) => {
            res.on('data', () => {});
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
          });
          r.on('error', reject);
          r.end(body);
        });
      await call(); // places the warm parent
      return call;
    };
    const viaFleet = await caller(fleet.url, { authorization: `Bearer ${key}` });
    const viaOpen = await caller(String(openGateway.ready.url), {});
    const viaBroker = await caller(String(brokerGateway.ready.url), {});
    const probes = await stageProbes(fleet, agent, key, body);
    const [fleet1, open1, broker1, ...probe1] = await alternating([viaFleet, viaOpen, viaBroker, ...probes.ops], seconds * 1000);
    await probes.close();
    const cpu = await cpuPerCall(fleet, viaFleet, seconds * 1000);
    const fleet64 = await closedLoop(viaFleet, 64, seconds * 1000);
    const broker64 = await closedLoop(viaBroker, 64, seconds * 1000);
    agent.destroy();

    const d1 = summarize(direct1.latencies);
    const d64 = summarize(direct64.latencies);
    const f1 = summarize(fleet1.latencies);
    const f64 = summarize(fleet64.latencies);
    const o1 = summarize(open1.latencies);
    const b1 = summarize(broker1.latencies);
    const [routeProbe, natsEcho, natsInvoke, channelInvoke] = probe1.map((p) => summarize(p.latencies));
    // Where one call's time goes, by differences of medians taken in the same alternated rounds. The gateway sends
    // calls over call channels: the queue group's path (NATS round trip, host) is what a call without one costs.
    const stages = {
      guestInProcessMs: d1.p50Ms,
      natsRoundTripMs: natsEcho.p50Ms,
      hostAndThreadHopMs: natsInvoke.p50Ms - natsEcho.p50Ms - d1.p50Ms,
      channelHopAndHostMs: channelInvoke.p50Ms - d1.p50Ms,
      httpAndRoutingMs: routeProbe.p50Ms,
      gatewayCallPathMs: f1.p50Ms - channelInvoke.p50Ms - routeProbe.p50Ms,
    };
    const rows = [
      ['direct (in-process pool)', 1, d1, direct1.rps, direct1.errors],
      ['direct (in-process pool)', 64, d64, direct64.rps, direct64.errors],
      ['gateway + host', 1, f1, fleet1.rps, fleet1.errors],
      ['  same, FLURRY_AUTH=none', 1, o1, open1.rps, open1.errors],
      ['  same, no call channels', 1, b1, broker1.rps, broker1.errors],
      ['gateway + host', 64, f64, fleet64.rps, fleet64.errors],
      ['  no call channels, no key', 64, summarize(broker64.latencies), broker64.rps, broker64.errors],
    ] as const;
    if (!args.includes('--quiet')) {
      console.log(`invoke: echo function, ${seconds} s per run, ${hosts} hosts x ${threads} guest threads, ${availableParallelism()} cores`);
      console.log('path                       clients    p50 ms    p99 ms        rps  errors');
      for (const [name, c, s, rps, errors] of rows) {
        console.log(`${name.padEnd(26)} ${String(c).padStart(7)} ${s.p50Ms.toFixed(3).padStart(9)} ${s.p99Ms.toFixed(3).padStart(9)} ${rps.toFixed(0).padStart(10)} ${String(errors).padStart(7)}`);
      }
      console.log(`added at the median, 1 client: ${(f1.p50Ms - d1.p50Ms).toFixed(3)} ms (fleet/direct p50 ratio ${(f1.p50Ms / d1.p50Ms).toFixed(2)}x)`);
      console.log(`throughput at 64 clients: fleet/direct ${(fleet64.rps / direct64.rps).toFixed(2)}x`);
      console.log(`call channels at the median, 1 client: ${(o1.p50Ms - b1.p50Ms).toFixed(3)} ms, p99 ${o1.p99Ms.toFixed(3)} vs ${b1.p99Ms.toFixed(3)} ms (FLURRY_AUTH=none gateways with and without, alternating rounds)`);
      console.log(`authentication at the median, 1 client: ${(f1.p50Ms - o1.p50Ms).toFixed(3)} ms (API key vs FLURRY_AUTH=none, alternating rounds)`);
      console.log('where the median call goes (1 client, differences of medians from the same rounds):');
      console.log(`  guest in process (pool, thread hop, instance, run)  ${stages.guestInProcessMs.toFixed(3)} ms`);
      console.log(`  NATS round trip (this process to itself)           ${stages.natsRoundTripMs.toFixed(3)} ms   p99 ${natsEcho.p99Ms.toFixed(3)}`);
      console.log(`  host: decode, pool, reply (NATS call - RTT - guest) ${stages.hostAndThreadHopMs.toFixed(3)} ms   (NATS call p50 ${natsInvoke.p50Ms.toFixed(3)}, p99 ${natsInvoke.p99Ms.toFixed(3)})`);
      console.log(`  call channel hop and host (channel call - guest)    ${stages.channelHopAndHostMs.toFixed(3)} ms   (channel call p50 ${channelInvoke.p50Ms.toFixed(3)}, p99 ${channelInvoke.p99Ms.toFixed(3)})`);
      console.log(`  gateway HTTP + call route's checks (refused invoke)  ${stages.httpAndRoutingMs.toFixed(3)} ms   p99 ${routeProbe.p99Ms.toFixed(3)}`);
      console.log(`  gateway call path (record, body, invoker, reply)    ${stages.gatewayCallPathMs.toFixed(3)} ms`);
      if (cpu) {
        console.log(`CPU per call at 1 client (/proc, user+system, µs): ${Object.entries(cpu.perCallUs).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}; ${cpu.calls} calls`);
        console.log(`  waiting for a core per call (run queue, µs): ${Object.entries(cpu.runqWaitUs).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}; time slices per call: ${Object.entries(cpu.slices).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
        if (cpu.clientTail) console.log(`  the client's own part of the tail: p99 ${cpu.clientTail.p99Ms.toFixed(3)} ms, its own wait for a core in a call p99 ${cpu.clientTail.ownWaitP99Ms.toFixed(3)} ms, p99 of each call less that wait ${cpu.clientTail.p99LessOwnWaitMs.toFixed(3)} ms`);
      }
      console.log(`key lookup in process: ${keyCheckUs.toFixed(2)} µs per call with 3 keys, ${keyCheckUs1000.toFixed(2)} µs with 1,000 (median of batches)`);
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
      noAuthP50Ms: round(o1.p50Ms),
      authAddedP50Ms: round(f1.p50Ms - o1.p50Ms),
      noChannelsRps64: round(broker64.rps, 0),
      noChannelsP50Ms: round(b1.p50Ms),
      noChannelsP99Ms: round(b1.p99Ms),
      noAuthP99Ms: round(o1.p99Ms),
      channelsSavedP50Ms: round(b1.p50Ms - o1.p50Ms),
      ...(cpu ? {
        cpuPerCallUs: Object.fromEntries(Object.entries(cpu.perCallUs).map(([k, v]) => [k, round(v, 0)])),
        runqWaitPerCallUs: Object.fromEntries(Object.entries(cpu.runqWaitUs).map(([k, v]) => [k, round(v, 0)])),
        slicesPerCall: Object.fromEntries(Object.entries(cpu.slices).map(([k, v]) => [k, round(v, 2)])),
        ...(cpu.clientTail ? { clientTail: Object.fromEntries(Object.entries(cpu.clientTail).map(([k, v]) => [k, round(v)])) } : {}),
      } : {}),
      breakdownMs: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(v)])),
      natsInvokeP50Ms: round(natsInvoke.p50Ms),
      natsInvokeP99Ms: round(natsInvoke.p99Ms),
      natsEchoP99Ms: round(natsEcho.p99Ms),
      channelInvokeP50Ms: round(channelInvoke.p50Ms),
      channelInvokeP99Ms: round(channelInvoke.p99Ms),
      httpOnlyP99Ms: round(routeProbe.p99Ms),
      keyCheckUs: round(keyCheckUs, 2),
      keyCheckUs1000: round(keyCheckUs1000, 2),
      errors: fleet1.errors + open1.errors + broker1.errors + fleet64.errors + broker64.errors + direct1.errors + direct64.errors + probe1.reduce((n, p) => n + p.errors, 0),
    };
  } finally {
    await Promise.all([openGateway.stop(5000), brokerGateway.stop(5000)]);
    await fleet.stop();
  }
}

/** Single-client loops over each op in turn, in short rounds (the order flipping each round), for `totalMs` each. */
async function alternating(ops: (() => Promise<void>)[], totalMs: number, rounds = 10): Promise<{ latencies: number[]; rps: number; errors: number }[]> {
  const out = ops.map(() => ({ latencies: [] as number[], rps: 0, errors: 0 }));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ops.map((_, i) => i) : ops.map((_, i) => ops.length - 1 - i);
    for (const i of order) {
      const got = await closedLoop(ops[i], 1, totalMs / rounds, 50);
      out[i].latencies.push(...got.latencies);
      out[i].errors += got.errors;
      out[i].rps += got.rps / rounds;
    }
  }
  return out;
}

/** Microseconds one API key lookup takes with `keys` keys: the median over batches of a known key's lookups. */
function keyCheckMicros(keys: number): number {
  const known = Array.from({ length: keys }, () => newApiKey());
  const ring = KeyRing.withKeys(known.map((k, i) => ({ tenant: `t${i}`, role: 'user', sha256: hashApiKey(k) })));
  const header = `Bearer ${known[keys - 1]}`;
  const batch = 200;
  const perCall: number[] = [];
  for (let b = 0; b < 50; b++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) ring.identify(header);
    perCall.push(((performance.now() - t0) * 1000) / batch);
  }
  return perCall.sort((x, y) => x - y)[perCall.length >> 1];
}

/**
 * Single-client probes of the call path's stages, run alternated with the full calls so that all see the same load:
 * the gateway's HTTP hop and its call route up to the function (a call refused there: see routeOnly below), a NATS
 * round trip (this process to itself through the broker), the call sent to the function's queue group
 * directly (NATS, the host and its guest thread; no gateway), and the call sent over a call channel of the probe's
 * own to the host holding it (as the gateway sends it). Differences of their medians are where a call's time goes.
 */
async function stageProbes(fleet: LocalFleet, agent: Agent, key: string, body: Buffer): Promise<{ ops: (() => Promise<void>)[]; close(): Promise<void> }> {
  const auth = { authorization: `Bearer ${key}` };
  const record = ((await (await fetch(`${fleet.url}/v1/functions/echo`, { headers: auth })).json()) as { function: { tenant: string; name: string; digest: string } }).function;
  const asker = await connect({ ...fleet.adminConnectOptions(), noAsyncTraces: true });
  const answerer: NatsConnection = await connect({ ...fleet.adminConnectOptions(), noAsyncTraces: true });
  const echoSubject = `bench.echo.${process.pid}`;
  answerer.subscribe(echoSubject, { callback: (_err, msg) => void msg.respond(msg.data) });
  await answerer.flush();
  /**
   * The call's HTTP hop and its call route up to the function: a POST like the fleet's calls (the same key, headers
   * and body) to the invoke route, on the path calls take (gateway/src/call-route: Node's server, the route's
   * match, request id, trace, key, request rate, broker up, a call slot), refused by the route's query check (`path`
   * given twice: 400) just before the function's record, the body and the invoker; the body is drained unread and
   * the refusal written as an error answer. No NATS, no host.
   */
  const refused = new URL('/v1/functions/echo/invoke?path=/a&path=/b', fleet.url);
  const routeOnly = () =>
    new Promise<void>((resolve, reject) => {
      const r = request(refused, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, ...auth } }, (res) => {
        res.on('data', () => {});
        res.on('end', () => (res.statusCode === 400 && res.headers['x-flurry-error'] === 'bad_request' ? resolve() : reject(new Error(`status ${res.statusCode} (${String(res.headers['x-flurry-error'])}), not the route's refusal`))));
      });
      r.on('error', reject);
      r.end(body);
    });
  const small = encode({ requestId: 'bench', pad: body });
  const natsEcho = async () => {
    await asker.request(echoSubject, small, { timeout: 5000 });
  };
  const invokeRequest: InvokeRequest = {
    requestId: 'bench-direct', tenant: record.tenant, name: record.name, digest: record.digest,
    method: 'POST', path: '/bench', query: 'a=1', headers: [['content-type', 'application/json']], body,
  };
  const subject = Subjects.invoke(record.tenant, record.name, record.digest);
  const natsInvoke = async () => {
    const reply = await callEncoded(asker, 'invoke', subject, encode(invokeRequest));
    if (!reply.ok) throw new Error(reply.error.message);
  };
  const channel = await openChannel(asker, fleet.hosts.map((h) => String(h.ready.hostId)), record);
  const channelInvoke = () => channel.call(encode(invokeRequest));
  return {
    ops: [routeOnly, natsEcho, natsInvoke, channelInvoke],
    async close() {
      channel.socket.destroy();
      await asker.close();
      await answerer.close();
    },
  };
}

/** A call channel of this process (as the gateway opens one, core/src/call-frames.ts) to the first host holding `fn` warm. */
async function openChannel(nc: NatsConnection, hostIds: string[], fn: { tenant: string; name: string; digest: string }): Promise<{ socket: Socket; call(request: Uint8Array): Promise<void> }> {
  for (const hostId of hostIds) {
    const token = randomBytes(32);
    const where = await natsCall(nc, 'openCalls', Subjects.openCalls(hostId), { token });
    if (!where.ok) throw new Error(`no call channel to ${hostId}: ${where.error.message}`);
    const socket = tcpConnect({ host: where.host, port: where.port, noDelay: true });
    const reader = new FrameReader(64 << 20);
    const waiting = new Map<number, (frame: { type: number; payload: Uint8Array }) => void>();
    socket.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) waiting.get(f.id)?.(f);
    });
    socket.on('error', () => undefined);
    let nextId = 1;
    const exchange = (type: FrameType, payload: Uint8Array) =>
      new Promise<{ type: number; payload: Uint8Array }>((resolve) => {
        const id = type === FrameType.hello ? 0 : nextId++;
        waiting.set(id, (f) => {
          waiting.delete(id);
          resolve(f);
        });
        writeFrame(socket, encodeFrame(type, id, payload));
      });
    await exchange(FrameType.hello, token);
    const call = async (request: Uint8Array) => {
      const answer = await exchange(FrameType.call, callPayload('', request));
      if (answer.type !== FrameType.reply) throw new Error(`${hostId} declined the call`);
      const reply = decodeOrRefuse('InvokeReply', answer.payload);
      if (!reply.ok) throw new Error(reply.error.message);
    };
    try {
      await call(encode({ requestId: 'bench-probe', tenant: fn.tenant, name: fn.name, digest: fn.digest, method: 'GET', path: '/', query: '', headers: [], body: new Uint8Array(0) }));
      return { socket, call };
    } catch {
      socket.destroy();
    }
  }
  throw new Error(`no host holds ${fn.name} warm`);
}

/**
 * What each process of the call's path spends per call, over a single-client loop of `op` (Linux only, from /proc;
 * undefined where it is missing): its CPU time (user + system), what a call costs apart from waiting, which load on
 * a shared machine inflates less than latency; and, summed over its threads (/proc/PID/task/TID/schedstat), the time
 * its threads were runnable but waited for a core (`runqWaitUs`) and how often they were put on one (`slices`: each
 * wake-up is one, and so is each preemption). The run-queue wait is the part of a call's latency that is neither
 * its code nor its messages but the machine's other work.
 */
async function cpuPerCall(fleet: LocalFleet, op: () => Promise<void>, durationMs: number): Promise<{ calls: number; perCallUs: Record<string, number>; runqWaitUs: Record<string, number>; slices: Record<string, number>; clientTail?: ClientTail } | undefined> {
  const ticks = (pid: number | undefined): number => {
    if (pid === undefined) return 0;
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  /** Nanoseconds waited on a run queue and time slices, summed over the threads of `pid` alive now. */
  const scheduled = (pid: number | undefined): { waitNs: number; slices: number } => {
    const sum = { waitNs: 0, slices: 0 };
    if (pid === undefined) return sum;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        // schedstat: time on a core (ns), time waiting on a run queue (ns), time slices.
        const [, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        sum.waitNs += wait;
        sum.slices += slices;
      } catch {
        // The thread exited meanwhile.
      }
    }
    return sum;
  };
  let natsPid: number | undefined;
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.includes('(nats-server)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) natsPid = Number(d);
    }
  } catch {
    return undefined;
  }
  const pids: Record<string, number | undefined> = { gateway: fleet.gateway.process.pid, natsServer: natsPid, client: process.pid };
  const hostPids = fleet.hosts.map((h) => h.process.pid);
  const sample = () => {
    const out: Record<string, { ticks: number; waitNs: number; slices: number }> = {};
    for (const [k, pid] of Object.entries(pids)) out[k] = { ticks: ticks(pid), ...scheduled(pid) };
    out.hosts = { ticks: 0, waitNs: 0, slices: 0 };
    for (const pid of hostPids) {
      const s = scheduled(pid);
      out.hosts.ticks += ticks(pid);
      out.hosts.waitNs += s.waitNs;
      out.hosts.slices += s.slices;
    }
    return out;
  };
  // The client's own wait for a core in each call (its thread that reads the answers): two reads a call, ~5 µs of
  // the client's CPU figure.
  const own = ownRunQueueWait();
  const ownWaitsMs: number[] = [];
  const timed = own
    ? async () => {
      const w0 = own.readNs();
      try {
        await op();
      } finally {
        ownWaitsMs.push((own.readNs() - w0) / 1e6);
      }
    }
    : op;
  const before = sample();
  const got = await closedLoop(timed, 1, durationMs, 0);
  const after = sample();
  own?.close();
  const hz = 100; // USER_HZ, the unit of /proc's times on Linux
  const calls = Math.max(1, got.latencies.length);
  const per = (f: (s: { ticks: number; waitNs: number; slices: number }) => number) => Object.fromEntries(Object.keys(before).map((k) => [k, (f(after[k]) - f(before[k])) / calls]));
  return {
    calls: got.latencies.length, perCallUs: per((s) => (s.ticks / hz) * 1e6), runqWaitUs: per((s) => s.waitNs / 1e3), slices: per((s) => s.slices),
    // One client, no warm-up: the loop measured every call, in order, as the waits were pushed.
    ...(own && ownWaitsMs.length === got.latencies.length ? { clientTail: clientTail(got.latencies, ownWaitsMs) } : {}),
  };
}

/**
 * The client's own part of the 1-client tail: the p99 of a loop's calls, the p99 of the client thread's own waits
 * for a core within a call, and the p99 the calls would have had without those waits (each call less its own wait).
 */
interface ClientTail {
  p99Ms: number;
  ownWaitP99Ms: number;
  p99LessOwnWaitMs: number;
}

function clientTail(latenciesMs: number[], ownWaitsMs: number[]): ClientTail {
  return {
    p99Ms: summarize(latenciesMs).p99Ms,
    ownWaitP99Ms: summarize(ownWaitsMs).p99Ms,
    p99LessOwnWaitMs: summarize(latenciesMs.map((ms, i) => ms - ownWaitsMs[i])).p99Ms,
  };
}
