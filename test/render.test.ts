// The render guest (functions/render) as a fork-join job over a real fleet
// (nats-server, a gateway, three hosts): a render forked into interleaved
// rows is byte for byte the render of one clone, and the PNG decodes.
//
// Models: the committed example spec (a generated trefoil knot), and the
// assimp test model WusonOBJ.obj (BSD-3-clause, Debian's assimp-testmodels),
// extracted at set-up from the .deb into test/.data/ (git-ignored); those
// tests are skipped, with the reason printed, when apt cannot fetch it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { repoRoot } from '../infra/src/services.js';
import { assimpModels, WUSON_OBJ, WUSON_PLY } from '../infra/src/datasets.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi } from './helpers/gateway-api.js';
import { b64, runJob } from './helpers/jobs.js';

interface Png { width: number; height: number; pixels: Buffer }

/** Checks the PNG's structure (signature, chunk CRCs, IHDR, IDAT, IEND) and inflates its pixels. */
function decodePng(png: Buffer): Png {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]));
  const chunks: { type: string; data: Buffer }[] = [];
  for (let p = 8; p < png.length; ) {
    const len = png.readUInt32BE(p);
    const type = png.subarray(p + 4, p + 8).toString('latin1');
    const data = png.subarray(p + 8, p + 8 + len);
    expect(png.readUInt32BE(p + 8 + len), `CRC of ${type}`).toBe(crc32(png.subarray(p + 4, p + 8 + len)));
    chunks.push({ type, data });
    p += 12 + len;
  }
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
  const ihdr = chunks[0]!.data;
  const width = ihdr.readUInt32BE(0), height = ihdr.readUInt32BE(4);
  expect([...ihdr.subarray(8)]).toEqual([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive filters, no interlace
  const raw = inflateSync(chunks[1]!.data); // checks the zlib header and Adler-32
  const row = width * 3;
  expect(raw.length).toBe(height * (1 + row));
  // Undo the row filters (None, Sub, Up, Average, Paeth).
  const pixels = Buffer.alloc(width * height * 3);
  const paeth = (a: number, b: number, c: number) => {
    const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  };
  for (let y = 0; y < height; y++) {
    const f = raw[y * (1 + row)]!;
    expect(f).toBeLessThanOrEqual(4);
    for (let i = 0; i < row; i++) {
      const x = raw[y * (1 + row) + 1 + i]!;
      const a = i >= 3 ? pixels[y * row + i - 3]! : 0;
      const b = y > 0 ? pixels[(y - 1) * row + i]! : 0;
      const c = i >= 3 && y > 0 ? pixels[(y - 1) * row + i - 3]! : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]!;
      pixels[y * row + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, pixels };
}

const CRC = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

describe('render', () => {
  let fleet: LocalFleet;
  const models = assimpModels();
  if ('reason' in models) console.warn(`render test: the assimp model tests are skipped: ${models.reason}`);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', LOG_LEVEL: 'warn' },
      gatewayEnv: { LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'render', guestProgram('render'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  async function job(init: unknown, clones: number, expectState = 'done'): Promise<{ job: JobRecord; png: Buffer }> {
    const j = await runJob(gatewayApi(() => fleet.url), { function: 'render', clones, init: b64(init) });
    expect(j.state, JSON.stringify(j.error)).toBe(expectState);
    if (expectState !== 'done') return { job: j, png: Buffer.alloc(0) };
    const out = await fetch(`${fleet.url}/v1/jobs/${j.id}/result`);
    expect(out.status).toBe(200);
    return { job: j, png: Buffer.from(await out.arrayBuffer()) };
  }

  /** Renders `spec` with 1 clone and with `clones`; the PNGs must be the same bytes. */
  async function forkedEqualsSingle(spec: Record<string, unknown>, clones: number): Promise<Png> {
    const started = Date.now();
    const [one, many] = await Promise.all([job(spec, 1), job(spec, clones)]);
    console.log(`render ${String(spec.width)}x${String(spec.height)}, ${String(spec.samples)} samples: 1 clone and ${clones} clones in ${Date.now() - started} ms`);
    expect(many.job.counts).toEqual({ done: clones, failed: 0, running: 0, pending: 0 });
    expect(new Set(many.job.clonesDetail.map((c) => c.host)).size).toBeGreaterThan(1);
    const png = decodePng(many.png);
    expect([png.width, png.height]).toEqual([spec.width, spec.height]);
    expect(many.png.equals(one.png)).toBe(true);
    // The clones' outputs ("FRI1", width, height, first row, row step, RGB8 rows)
    // are the PNG's pixels: clone i holds rows i, i + clones, ...
    const rowBytes = png.width * 3;
    const pixels = Buffer.alloc(png.pixels.length);
    for (let i = 0; i < clones; i++) {
      const out = Buffer.from(await (await fetch(`${fleet.url}/v1/jobs/${many.job.id}/clones/${i}/output`)).arrayBuffer());
      expect(out.subarray(0, 4).toString('latin1')).toBe('FRI1');
      expect([out.readUInt32LE(4), out.readUInt32LE(8), out.readUInt32LE(12), out.readUInt32LE(16)]).toEqual([png.width, png.height, i, clones]);
      const rows = Math.ceil((png.height - i) / clones);
      expect(out.length).toBe(20 + rows * rowBytes);
      for (let k = 0; k < rows; k++) out.copy(pixels, (i + k * clones) * rowBytes, 20 + k * rowBytes, 20 + (k + 1) * rowBytes);
    }
    expect(pixels.equals(png.pixels)).toBe(true);
    return png;
  }

  it('example spec (a generated knot) - 8 clones give the bytes of 1 clone; the PNG decodes', async () => {
    const spec = JSON.parse(readFileSync(join(repoRoot, 'functions', 'examples', 'render.json'), 'utf8')) as Record<string, unknown>;
    const small = { ...spec, width: 96, height: 72, samples: 6 };
    const png = await forkedEqualsSingle(small, 8);
    // handle(): the spec as the body, the whole image in one instance, the same bytes.
    const res = await fetch(`${fleet.url}/fn/render`, { method: 'POST', body: JSON.stringify(small) });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const single = Buffer.from(await res.arrayBuffer());
    expect(decodePng(single).pixels.equals(png.pixels)).toBe(true);
    // Not a blank image: the knot and the sky differ.
    expect(new Set(png.pixels).size).toBeGreaterThan(50);
  });

  it.skipIf('reason' in models)('assimp Wuson (OBJ, 3,732 triangles) - 10 clones of interleaved rows (7 or 8 each) give the bytes of 1 clone', async () => {
    const dir = (models as { dir: string }).dir;
    const model = readFileSync(join(dir, WUSON_OBJ), 'utf8');
    await forkedEqualsSingle({ width: 96, height: 72, samples: 6, maxDepth: 3, rotateY: 150, model }, 10);
  });

  it.skipIf('reason' in models)('assimp Wuson as ASCII PLY and as binary PLY (modelBase64) - the same picture', async () => {
    const dir = (models as { dir: string }).dir;
    const text = readFileSync(join(dir, WUSON_PLY));
    // The same mesh as binary big-endian PLY, written here from the ASCII one.
    const lines = text.toString('latin1').split('\n');
    const end = lines.indexOf('end_header');
    const counts = Object.fromEntries(lines.slice(0, end).filter((l) => l.startsWith('element')).map((l) => [l.split(' ')[1], Number(l.split(' ')[2])]));
    const body = lines.slice(end + 1);
    const header = `ply\nformat binary_big_endian 1.0\nelement vertex ${counts.vertex}\nproperty double x\nproperty double y\nproperty double z\nelement face ${counts.face}\nproperty list uchar int vertex_indices\nend_header\n`;
    const parts: Buffer[] = [Buffer.from(header, 'latin1')];
    for (let i = 0; i < counts.vertex!; i++) {
      const b = Buffer.alloc(24);
      body[i]!.trim().split(/\s+/).slice(0, 3).forEach((v, k) => b.writeDoubleBE(Number(v), 8 * k));
      parts.push(b);
    }
    for (let i = 0; i < counts.face!; i++) {
      const f = body[counts.vertex! + i]!.trim().split(/\s+/).map(Number);
      const b = Buffer.alloc(1 + 4 * f[0]!);
      b[0] = f[0]!;
      for (let k = 0; k < f[0]!; k++) b.writeInt32BE(f[k + 1]!, 1 + 4 * k);
      parts.push(b);
    }
    const spec = { width: 64, height: 48, samples: 4, maxDepth: 2 };
    const [ascii, binary] = await Promise.all([job({ ...spec, model: text.toString('latin1') }, 4), job({ ...spec, modelBase64: Buffer.concat(parts).toString('base64') }, 4)]);
    const a = decodePng(ascii.png), b = decodePng(binary.png);
    // Numbers parsed from text and read as doubles may differ in the last bit: compare closely, not exactly.
    let diff = 0;
    for (let i = 0; i < a.pixels.length; i++) diff += Math.abs(a.pixels[i]! - b.pixels[i]!);
    expect(diff / a.pixels.length).toBeLessThan(2);
    expect(new Set(a.pixels).size).toBeGreaterThan(50);
  });

  it('a bad spec fails the job with the reason, and handle() answers it with 400', async () => {
    const none = await job({ width: 8, height: 8 }, 2, 'failed');
    expect(none.job.error?.message).toContain('render init: model or modelBase64 is required');
    const bad = await job({ width: 8, height: 8, model: 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n' }, 2, 'failed');
    expect(bad.job.error?.message).toContain('OBJ line 4: face index out of range');
    // handle() answers 400 with the reason.
    const cases: [string, string][] = [
      ['', 'no scene: POST the spec, or give it as the init input'],
      ['{"width":8', 'render init: input is not JSON'],
      ['{"width":0,"model":"v 0 0 0"}', 'render init: width must be a number from 1 to 8192'],
      ['{"model":"v 0 0 0\\nv 1 0 0\\nv 0 1 0\\nf 1 2 4\\n"}', 'OBJ line 4: face index out of range'],
      ['{"model":"ply\\nformat binary_little_endian 1.0\\nelement vertex 3\\nproperty float x\\nend_header\\n"}', 'PLY: vertex without x, y, z'],
      ['{"modelBase64":"cGx5CmZvcm1hdCBiaW5hcnlfbGl0dGxlX2VuZGlhbiAxLjAKZWxlbWVudCB2ZXJ0ZXggMwpwcm9wZXJ0eSBmbG9hdCB4CnByb3BlcnR5IGZsb2F0IHkKcHJvcGVydHkgZmxvYXQgegplbmRfaGVhZGVyCgAA"}', 'PLY: data ends early'],
      ['{"model":"v 0 0 0\\nv 1 0 0\\nv 0 1 0\\nf 1 2 3\\n","camera":{"position":[0,0,0],"lookAt":[0,0,0]}}', 'render init: degenerate camera'],
    ];
    for (const [body, message] of cases) {
      const res = await fetch(`${fleet.url}/fn/render`, { method: 'POST', body });
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { error: string }).error, body).toContain(message);
    }
  });
});
