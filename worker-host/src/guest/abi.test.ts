/** The `flurry` and AssemblyScript `env` imports, exercised through the pool with hand-written WAT guests. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { GuestPool, type HttpRequestData } from './guest-pool.js';
import { wat } from '../../../test/helpers/wat.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const request = (over: Partial<HttpRequestData> = {}): HttpRequestData => ({ method: 'GET', path: '/', query: '', headers: [], body: new Uint8Array(0), ...over });

const FLURRY_IMPORTS = `
  (import "flurry" "input_size" (func $input_size (result i32)))
  (import "flurry" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (import "flurry" "request_method" (func $method (param i32 i32) (result i32)))
  (import "flurry" "request_path" (func $path (param i32 i32) (result i32)))
  (import "flurry" "request_query" (func $query (param i32 i32) (result i32)))
  (import "flurry" "request_header_count" (func $hcount (result i32)))
  (import "flurry" "request_header_name" (func $hname (param i32 i32 i32) (result i32)))
  (import "flurry" "request_header_value" (func $hvalue (param i32 i32 i32) (result i32)))
  (import "flurry" "response_status" (func $status (param i32)))
  (import "flurry" "response_header" (func $header (param i32 i32 i32 i32)))
  (import "flurry" "log" (func $log (param i32 i32 i32)))
  (import "flurry" "now_ms" (func $now (result f64)))
  (import "flurry" "monotonic_ms" (func $mono (result f64)))
  (import "flurry" "entropy" (func $entropy (param i32 i32)))
`;

/** Writes each request field and the input (from offset 2) to the output, "|"-separated; status 201 and one header. */
const REQUEST_ECHO = wat(`(module ${FLURRY_IMPORTS}
  (memory (export "memory") 1 1)
  (data (i32.const 0) "|")
  (data (i32.const 16) "x-echo")
  (data (i32.const 32) "yes")
  (func $field (param $len i32)
    (call $out (i32.const 1024) (local.get $len))
    (call $out (i32.const 0) (i32.const 1)))
  (func $digit (param $n i32)
    (i32.store8 (i32.const 1024) (i32.add (i32.const 48) (local.get $n)))
    (call $field (i32.const 1)))
  (func (export "handle") (result i32)
    (call $field (call $method (i32.const 1024) (i32.const 1000)))
    (call $field (call $path (i32.const 1024) (i32.const 1000)))
    (call $field (call $query (i32.const 1024) (i32.const 1000)))
    (call $digit (call $hcount))
    (call $field (call $hname (i32.const 1) (i32.const 1024) (i32.const 1000)))
    (call $field (call $hvalue (i32.const 1) (i32.const 1024) (i32.const 1000)))
    (call $digit (i32.add (i32.const 1) (call $hname (i32.const 9) (i32.const 1024) (i32.const 10))))
    ;; cap 0 copies nothing and answers the full length
    (call $digit (call $path (i32.const 0) (i32.const 0)))
    ;; cap 2 copies two bytes and still answers the full length
    (call $digit (call $path (i32.const 2000) (i32.const 2)))
    (call $out (i32.const 2000) (i32.const 3))
    (call $out (i32.const 0) (i32.const 1))
    (call $digit (call $input_size))
    (call $field (call $input_read (i32.const 1024) (i32.const 100) (i32.const 2)))
    (call $digit (call $input_read (i32.const 1024) (i32.const 100) (i32.const 50)))
    (call $status (i32.const 201))
    (call $header (i32.const 16) (i32.const 6) (i32.const 32) (i32.const 3))
    (i32.const 0))
  (func (export "run") (param i32 i32) (result i32)
    (call $digit (call $method (i32.const 1024) (i32.const 10)))
    (call $digit (call $path (i32.const 1024) (i32.const 10)))
    (call $digit (call $query (i32.const 1024) (i32.const 10)))
    (call $digit (call $hcount))
    (call $digit (i32.add (i32.const 1) (call $hname (i32.const 0) (i32.const 1024) (i32.const 10))))
    (call $digit (i32.add (i32.const 1) (call $hvalue (i32.const 0) (i32.const 1024) (i32.const 10))))
    (i32.const 0)))`);

/** Logs `input_size` lines at level (i % 5). */
const LOGGER = wat(`(module ${FLURRY_IMPORTS}
  (memory (export "memory") 1 1)
  (data (i32.const 0) "line")
  (func (export "handle") (result i32)
    (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (call $input_size)))
      (call $log (i32.rem_u (local.get $i) (i32.const 5)) (i32.const 0) (i32.const 4))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0)))`);

/** handle misbehaves in the way the path's length selects. */
const MISUSE = wat(`(module ${FLURRY_IMPORTS}
  (memory (export "memory") 1 1)
  (data (i32.const 0) "bad name")
  (data (i32.const 16) "ok\\0d\\0ainjected")
  (func (export "handle") (result i32)
    (local $which i32)
    (local.set $which (call $path (i32.const 0) (i32.const 0)))
    (if (i32.eq (local.get $which) (i32.const 1)) (then (call $status (i32.const 99))))
    (if (i32.eq (local.get $which) (i32.const 2)) (then (call $header (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 2))))
    (if (i32.eq (local.get $which) (i32.const 3)) (then (call $header (i32.const 16) (i32.const 2) (i32.const 16) (i32.const 12))))
    (if (i32.eq (local.get $which) (i32.const 4)) (then (call $out (i32.const 65530) (i32.const 100))))
    (if (i32.eq (local.get $which) (i32.const 5)) (then (drop (call $method (i32.const 70000) (i32.const 10)))))
    (i32.const 0)))`);

/** Outputs now_ms, monotonic_ms and 16 entropy bytes. */
const CLOCKS = wat(`(module ${FLURRY_IMPORTS}
  (memory (export "memory") 1 1)
  (func (export "handle") (result i32)
    (local $spins i32)
    (f64.store (i32.const 0) (call $now))
    (f64.store (i32.const 8) (call $mono))
    (call $entropy (i32.const 16) (i32.const 16))
    ;; monotonic_ms again once it moved on (at most 100 million reads, so a stuck clock ends the loop)
    (block $moved (loop $wait
      (f64.store (i32.const 32) (call $mono))
      (br_if $moved (f64.gt (f64.load (i32.const 32)) (f64.load (i32.const 8))))
      (local.set $spins (i32.add (local.get $spins) (i32.const 1)))
      (br_if $wait (i32.lt_u (local.get $spins) (i32.const 100000000)))))
    (call $out (i32.const 0) (i32.const 40))
    (i32.const 0)))`);

/** AssemblyScript's runtime imports: strings are UTF-16LE with their byte length in the u32 before them. */
const ASSEMBLYSCRIPT = wat(`(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (import "env" "seed" (func $seed (result f64)))
  (import "env" "trace" (func $trace (param i32 i32 f64 f64 f64 f64 f64)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (import "flurry" "input_size" (func $input_size (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 4) "\\06\\00\\00\\00h\\00i\\00!\\00")
  (data (i32.const 28) "\\08\\00\\00\\00a\\00.\\00t\\00s\\00")
  (func (export "handle") (result i32)
    (f64.store (i32.const 100) (call $seed))
    (call $out (i32.const 100) (i32.const 8))
    (call $trace (i32.const 8) (i32.const 2) (f64.const 1.5) (f64.const 2) (f64.const 0) (f64.const 0) (f64.const 0))
    (if (i32.eq (call $input_size) (i32.const 2)) (then (call $abort (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 0))))
    (if (call $input_size) (then (call $abort (i32.const 8) (i32.const 32) (i32.const 3) (i32.const 5))))
    (i32.const 0)))`);

const limits = { callTimeoutMs: 5000, initTimeoutMs: 5000, maxOutputBytes: 4096, maxLogLines: 64, maxLogBytes: 65536 };
let pool: GuestPool;

beforeAll(async () => {
  pool = await GuestPool.start({ threads: 2, limits, log: createLogger('test', {}, 'silent') });
  await Promise.all([
    pool.warm('echo', REQUEST_ECHO),
    pool.warm('logger', LOGGER),
    pool.warm('misuse', MISUSE),
    pool.warm('clocks', CLOCKS),
    pool.warm('as', ASSEMBLYSCRIPT),
  ]);
});
afterAll(() => pool?.close());

describe('flurry imports', () => {
  it('request - getters copy up to cap and answer the full length; input reads from an offset', async () => {
    const result = await pool.handle(
      'echo',
      request({ method: 'post', path: '/a/b', query: 'x=1', headers: [['Content-Type', 'text/plain'], ['X-Thing', 'Val']], body: new TextEncoder().encode('hello world') }),
      'c1',
    );
    // method upper case, header names lower case, -1 for a header out of range (shown as 0), "/a" of "/a/b" with cap 2
    expect(text(result.body)).toBe('POST|/a/b|x=1|2|x-thing|Val|0|4|4|/a\0|;|llo world|0|');
  });

  it('response - status and headers set by the guest come back', async () => {
    const result = await pool.handle('echo', request({ headers: [['a', '1'], ['b', '2']] }), 'c2');
    expect(result.status).toBe(201);
    expect(result.headers).toEqual([['x-echo', 'yes']]);
  });

  it('request - outside a request the getters answer 0 and the header getters -1', async () => {
    const result = await pool.run('echo', 0, 1, new Uint8Array(0), 'c3');
    expect(text(result.body)).toBe('0|0|0|0|0|0|');
  });

  it('log - levels map 0..3 and out-of-range levels clamp; lines past the cap are dropped and counted', async () => {
    const few = await pool.handle('logger', request({ body: new Uint8Array(5) }), 'c5');
    expect(few.logs.map((l) => l.level)).toEqual(['debug', 'info', 'warn', 'error', 'error']);
    expect(few.logs[0].message).toBe('line');
    const many = await pool.handle('logger', request({ body: new Uint8Array(100) }), 'c6');
    expect(many.logs).toHaveLength(64);
    expect(many.droppedLogLines).toBe(36);
  });

  it('response - a status outside 100-599 traps', async () => {
    await expect(pool.handle('misuse', request({ path: '/' }), 'c7')).rejects.toMatchObject({ code: 'guest_trap', message: 'response status 99 is outside 100-599' });
  });

  it('response - invalid header names and values with line breaks trap', async () => {
    await expect(pool.handle('misuse', request({ path: '/b' }), 'c8')).rejects.toMatchObject({ code: 'guest_trap', message: 'invalid response header name "bad name"' });
    await expect(pool.handle('misuse', request({ path: '/bc' }), 'c9')).rejects.toMatchObject({ code: 'guest_trap', message: expect.stringContaining('line breaks') });
  });

  it('memory - pointers out of bounds trap', async () => {
    await expect(pool.handle('misuse', request({ path: '/bcd' }), 'c10')).rejects.toMatchObject({ code: 'guest_trap', message: 'memory access out of bounds' });
    await expect(pool.handle('misuse', request({ path: '/bcde', method: 'GET' }), 'c11')).rejects.toMatchObject({ code: 'guest_trap', message: 'memory access out of bounds' });
  });

  it('clocks - now_ms is the wall clock, monotonic_ms advances, entropy differs per instance', async () => {
    const before = Date.now();
    const a = await pool.handle('clocks', request(), 'c12');
    const b = await pool.handle('clocks', request(), 'c13');
    const va = new DataView(a.body.buffer, a.body.byteOffset);
    const vb = new DataView(b.body.buffer, b.body.byteOffset);
    expect(va.getFloat64(0, true)).toBeGreaterThanOrEqual(before - 1);
    expect(va.getFloat64(0, true)).toBeLessThanOrEqual(Date.now() + 1);
    // Two reads in one call: the second, taken once the clock moved, is later (a stuck clock gives equal reads).
    expect(vb.getFloat64(32, true)).toBeGreaterThan(vb.getFloat64(8, true));
    expect(Buffer.from(a.body.subarray(16, 32)).equals(Buffer.from(b.body.subarray(16, 32)))).toBe(false);
  });
});

describe('AssemblyScript env imports', () => {
  it('abort - traps with the decoded message, file, line and column', async () => {
    await expect(pool.handle('as', request({ body: new Uint8Array(1) }), 'c14')).rejects.toMatchObject({ code: 'guest_trap', message: 'abort: hi! at a.ts:3:5' });
  });

  it('abort - without a file (an explicit abort("...") call) the location is left out', async () => {
    await expect(pool.handle('as', request({ body: new Uint8Array(2) }), 'c18')).rejects.toMatchObject({ code: 'guest_trap', message: 'abort: hi!' });
  });

  it('abort - the log lines written before the trap come with the error', async () => {
    const err = await pool.handle('as', request({ body: new Uint8Array(1) }), 'c15').catch((e: unknown) => e);
    expect((err as { logs: unknown[] }).logs).toEqual([{ level: 'debug', message: 'trace: hi! 1.5, 2' }]);
  });

  it('seed - a non-zero seed that differs per instance; trace logs at debug', async () => {
    const a = await pool.handle('as', request(), 'c16');
    const b = await pool.handle('as', request(), 'c17');
    const seed = (r: { body: Uint8Array }) => new DataView(r.body.buffer, r.body.byteOffset).getFloat64(0, true);
    expect(seed(a)).not.toBe(0);
    expect(seed(a)).not.toBe(seed(b));
    expect(a.logs).toEqual([{ level: 'debug', message: 'trace: hi! 1.5, 2' }]);
  });
});
