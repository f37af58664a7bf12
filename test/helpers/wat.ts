/** Builds small WebAssembly modules from WAT text (wabt): the one wat() of every suite, unit and fleet. */
import wabtInit from 'wabt';

const wabt = await wabtInit();

export function wat(src: string): Uint8Array {
  const m = wabt.parseWat('test.wat', src, { bulk_memory: true, mutable_globals: true, threads: true });
  return new Uint8Array(m.toBinary({}).buffer);
}

/**
 * A function whose `handle` (or, with entry `run`, a job clone's `run`)
 * busy-waits `ms` milliseconds, then answers "done".
 */
export function slowModule(ms: number, entry: 'handle' | 'run' = 'handle'): Uint8Array {
  const done = '(call $out (i32.const 0) (i32.const 4)) (i32.const 0)';
  const busy = `(local $t f64)
      (local.set $t (call $now))
      (block $b (loop $l
        (br_if $b (f64.ge (f64.sub (call $now) (local.get $t)) (f64.const ${ms})))
        (br $l)))
      ${done}`;
  return wat(`(module
    (import "flurry" "monotonic_ms" (func $now (result f64)))
    (import "flurry" "output_write" (func $out (param i32 i32)))
    (memory (export "memory") 1 1)
    (data (i32.const 0) "done")
    (func (export "handle") (result i32) ${entry === 'handle' ? busy : done})
    ${entry === 'run' ? `(func (export "run") (param i32 i32) (result i32) ${busy})` : ''})`);
}
