// The `quant` guest (Monte Carlo option pricing) as fork-join jobs through a
// real fleet: a nats-server, a gateway and three host processes. European
// prices are checked against Black-Scholes; the forked result is checked to
// be the very same double as a single instance's (handle) with the same seed,
// whatever the number of clones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi } from './helpers/gateway-api.js';
import { b64, cloneOutputs, runJob } from './helpers/jobs.js';

interface QuantSpec { spot: number; strike: number; rate: number; volatility: number; maturity: number; steps?: number; paths: number; option: string; seed: number; antithetic?: boolean }
interface QuantResult { option: string; price: number; stdError: number; paths: number; clones: number; antithetic: boolean; steps: number; seed: number; sum: number; sumSquares: number }
interface CloneOutput { index: number; count: number; first: number; paths: number; sum: number; sumSquares: number; nodes: [number, number, number, number][] }


/** Φ(x) by Marsaglia's series (absolute error about 1e-15 for |x| < 8). */
export function normalCdf(x: number): number {
  if (x < -8) return 0;
  if (x > 8) return 1;
  let s = x, t = 0, b = x, i = 1;
  const q = x * x;
  while (s !== t) { t = s; i += 2; b *= q / i; s = t + b; }
  return 0.5 + s * Math.exp(-0.5 * q - 0.91893853320467274178);
}

export function blackScholes(o: { spot: number; strike: number; rate: number; volatility: number; maturity: number }, call: boolean): number {
  const sd = o.volatility * Math.sqrt(o.maturity);
  const d1 = (Math.log(o.spot / o.strike) + (o.rate + 0.5 * o.volatility * o.volatility) * o.maturity) / sd;
  const d2 = d1 - sd;
  const k = o.strike * Math.exp(-o.rate * o.maturity);
  return call ? o.spot * normalCdf(d1) - k * normalCdf(d2) : k * normalCdf(-d2) - o.spot * normalCdf(-d1);
}

const market = { spot: 100, strike: 100, rate: 0.05, volatility: 0.2, maturity: 1 };

describe('quant', () => {
  let fleet: LocalFleet;

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'quant', guestProgram('quant'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  const job = (spec: QuantSpec | string, clones: number) =>
    runJob(gatewayApi(() => fleet.url), { function: 'quant', clones, init: b64(spec) });

  async function price(spec: QuantSpec, clones: number): Promise<{ record: JobRecord; result: QuantResult }> {
    const record = await job(spec, clones);
    expect(record.state, JSON.stringify(record.error)).toBe('done');
    const res = await fetch(`${fleet.url}/v1/jobs/${record.id}/result`);
    expect(res.status).toBe(200);
    return { record, result: JSON.parse(Buffer.from(await res.arrayBuffer()).toString()) as QuantResult };
  }

  /** The single-instance price: handle() with the spec as the body. */
  async function single(spec: QuantSpec, query = ''): Promise<Response> {
    return fetch(`${fleet.url}/fn/quant${query}`, { method: 'POST', body: JSON.stringify(spec) });
  }

  const outputsOf = (record: JobRecord) => cloneOutputs<CloneOutput>(gatewayApi(() => fleet.url), record);

  it('Black-Scholes reference - the normal CDF and the formula match published values', () => {
    expect(normalCdf(0)).toBe(0.5);
    expect(normalCdf(1.96)).toBeCloseTo(0.9750021048517795, 12);
    expect(normalCdf(-1)).toBeCloseTo(0.15865525393145707, 12);
    expect(blackScholes(market, true)).toBeCloseTo(10.450583572185565, 9);
    expect(blackScholes(market, false)).toBeCloseTo(5.573526022256971, 9);
  });

  it('european call - 16 clones over 3 hosts price within 3 standard errors of Black-Scholes, exactly like one instance', async () => {
    const spec = { ...market, option: 'european-call', paths: 2_000_003, seed: 1 };
    const { record, result } = await price(spec, 16);
    const bs = blackScholes(market, true);
    expect(result).toMatchObject({ option: 'european-call', paths: 2_000_003, clones: 16, antithetic: false, seed: 1 });
    expect(result.stdError).toBeGreaterThan(0.005);
    expect(result.stdError).toBeLessThan(0.015);
    expect(Math.abs(result.price - bs), `price ${result.price} vs Black-Scholes ${bs}, SE ${result.stdError}`).toBeLessThan(3 * result.stdError);
    expect(new Set(record.clonesDetail.map((c) => c.host)).size).toBeGreaterThan(1);
    // Paths split evenly, the last clone takes the remainder.
    const outputs = await outputsOf(record);
    const each = Math.floor(2_000_003 / 16);
    expect(outputs.map((o) => [o.index, o.first, o.paths])).toEqual(outputs.map((_, i) => [i, i * each, i === 15 ? 2_000_003 - 15 * each : each]));
    // The single instance gives the same doubles.
    const one = (await (await single(spec)).json()) as QuantResult;
    expect({ ...one, clones: 16 }).toEqual(result);
  });

  it('european put - within 3 standard errors of Black-Scholes; antithetic variates lower the standard error', async () => {
    const bs = blackScholes(market, false);
    const plain = (await price({ ...market, option: 'european-put', paths: 2_000_000, seed: 2 }, 16)).result;
    expect(plain.option).toBe('european-put');
    expect(Math.abs(plain.price - bs), `price ${plain.price} vs Black-Scholes ${bs}, SE ${plain.stdError}`).toBeLessThan(3 * plain.stdError);
    const anti = (await price({ ...market, option: 'european-put', paths: 1_000_000, seed: 2, antithetic: true }, 8)).result;
    expect(anti.antithetic).toBe(true);
    expect(Math.abs(anti.price - bs), `price ${anti.price} vs Black-Scholes ${bs}, SE ${anti.stdError}`).toBeLessThan(3 * anti.stdError);
    // A million pairs (two million paths) beat two million independent paths.
    expect(anti.stdError).toBeLessThan(plain.stdError);
  });

  it('asian call - below the European call, and 4 clones, 16 clones and one instance give bit-identical prices', async () => {
    const spec = { ...market, option: 'asian-call', steps: 32, paths: 1_048_583, seed: 3 };
    const [four, sixteen] = await Promise.all([price(spec, 4), price(spec, 16)]);
    const one = (await (await single(spec)).json()) as QuantResult;
    const reference = { ...one, clones: 0 };
    expect({ ...four.result, clones: 0 }).toEqual(reference);
    expect({ ...sixteen.result, clones: 0 }).toEqual(reference);
    expect(Object.is(sixteen.result.price, one.price)).toBe(true);
    expect(sixteen.result).toMatchObject({ option: 'asian-call', steps: 32, paths: 1_048_583, clones: 16 });
    expect(Math.abs(sixteen.result.price - one.price)).toBeLessThanOrEqual(3 * one.stdError);
    // Averaging lowers the volatility the option sees: well below the European price.
    expect(sixteen.result.price + 3 * sixteen.result.stdError).toBeLessThan(blackScholes(market, true));
    // The arithmetic-average call of these parameters is about 5.8 (monthly-ish monitoring).
    expect(sixteen.result.price).toBeGreaterThan(5.5);
    expect(sixteen.result.price).toBeLessThan(6.2);
    // handle's ?index&count answers what that clone output.
    const { ms: _a, ...clone } = (await (await single(spec, '?index=3&count=4')).json()) as CloneOutput & { ms: number };
    const { ms: _b, ...forked } = (await outputsOf(four.record))[3] as CloneOutput & { ms: number };
    expect(clone).toEqual(forked);
  });

  it('progress and small jobs - every clone reports its progress up to its share; fewer paths than clones still price exactly', async () => {
    const spec = { ...market, option: 'asian-put', steps: 8, paths: 800_000, seed: 4 };
    const res = await fetch(`${fleet.url}/v1/jobs`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ function: 'quant', clones: 4, init: b64(spec) }),
    });
    expect(res.status).toBe(202);
    const { id } = ((await res.json()) as { job: JobRecord }).job;
    const events = await (await fetch(`${fleet.url}/v1/jobs/${id}/events`)).text();
    expect(events).toContain('event: done');
    const progress = events.split('\n\n').filter((e) => e.startsWith('event: progress'))
      .map((e) => JSON.parse(/^data: (.*)$/m.exec(e)![1]!) as { index: number; done: number; total: number });
    for (let i = 0; i < 4; i++) {
      const mine = progress.filter((p) => p.index === i);
      expect(mine.every((p) => p.total === 200_000 && p.done <= p.total)).toBe(true);
      expect(mine.at(-1)?.done, `the last progress of clone ${i}`).toBe(200_000);
    }
    // 5 paths over 8 clones: seven clones have none, the last has them all.
    const tiny = { ...market, option: 'european-call', paths: 5, seed: 5 };
    const { record, result } = await price(tiny, 8);
    expect((await outputsOf(record)).map((o) => o.paths)).toEqual([0, 0, 0, 0, 0, 0, 0, 5]);
    expect({ ...result, clones: 1 }).toEqual((await (await single(tiny)).json()) as QuantResult);
  });

  it('bad specs - init refuses them (the job fails), handle answers 400', async () => {
    const failed = await job('{"option":"lookback-call"}', 2);
    expect(failed.state).toBe('failed');
    expect(failed.error?.message).toContain('option must be european-call, european-put, asian-call or asian-put');
    const res = await fetch(`${fleet.url}/fn/quant`, { method: 'POST', body: '{"paths":0}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'paths must be an integer from 1 to 2^40' });
  });
});
