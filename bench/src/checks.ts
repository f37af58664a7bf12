/**
 * `npm run bench -- checks`: what checking a message costs on the invoke path.
 * One round is what a call costs the gateway and its host in decoding: the
 * host decodes an InvokeRequest, the gateway its InvokeReply. Measured plain
 * (msgpack only) and checked (size, keys, schema: checked-decode.ts), in
 * batches of `--batch` rounds; the median batch's time per round is reported.
 */
import { decode, decodeChecked, encode, type InvokeReply, type InvokeRequest } from '@flurry/core';
import { option } from './options.js';
import { round, summarize } from './stats.js';

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const batches = option(args, 'batches', 400, { positive: true });
  const batch = option(args, 'batch', 1000, { positive: true });
  const req: InvokeRequest = {
    requestId: 'req_m3k2x9a1b2c3', tenant: 'default', name: 'echo', digest: 'a'.repeat(64), method: 'POST', path: '/bench', query: 'a=1',
    headers: [['content-type', 'application/json'], ['user-agent', 'flurry-bench']], body: Buffer.from('{"hello":"flurry"}'),
  };
  const reply: InvokeReply = { ok: true, status: 200, headers: [['content-type', 'application/json']], body: Buffer.from('{"hello":"flurry"}'), hostId: 'host_m3k2x9a1', durationMs: 0.08 };
  const reqBytes = encode(req);
  const replyBytes = encode(reply);
  const plain = () => {
    decode(reqBytes);
    decode(replyBytes);
  };
  const checked = () => {
    if (!decodeChecked('InvokeRequest', reqBytes) || !decodeChecked('InvokeReply', replyBytes)) throw new Error('the benchmark\'s messages must pass their checks');
  };
  // Alternating batches, so that load from elsewhere on the machine falls on both alike.
  const perRoundUs = { plain: [] as number[], checked: [] as number[] };
  for (let i = 0; i < batches + 20; i++) {
    for (const [name, f] of [['plain', plain], ['checked', checked]] as const) {
      const t0 = performance.now();
      for (let j = 0; j < batch; j++) f();
      if (i >= 20) perRoundUs[name].push(((performance.now() - t0) * 1000) / batch);
    }
  }
  const plainUs = summarize(perRoundUs.plain).p50Ms;
  const checkedUs = summarize(perRoundUs.checked).p50Ms;
  const result = { rounds: batches * batch, plainUs: round(plainUs), checkedUs: round(checkedUs), addedUs: round(checkedUs - plainUs) };
  console.log(`invoke round (InvokeRequest + InvokeReply), median of ${batches} batches of ${batch}:`);
  console.log(`  msgpack only     ${result.plainUs} µs`);
  console.log(`  checked          ${result.checkedUs} µs`);
  console.log(`  added by checks  ${result.addedUs} µs`);
  return result;
}
