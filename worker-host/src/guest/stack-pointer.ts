/**
 * Finds a module's shadow-stack pointer: the mutable i32 global that
 * function prologues lower (`global.get N; i32.const K; i32.sub; [local.tee L;]
 * global.set N`), as clang (__stack_pointer) and AssemblyScript's shadow stack
 * emit. A persistent instance rewinds it after a trap: between requests the
 * shadow stack is empty, so its value at rest never changes, and a trap would
 * otherwise leak the trapped frames for good.
 */
import { GLOBAL_EXPORT_PREFIX } from '@flurry/core';

function readLeb(bytes: Uint8Array, pos: number): [value: number, next: number] | undefined {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5 && pos < bytes.length; i++) {
    const b = bytes[pos++];
    result |= (b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) === 0) return [result >>> 0, pos];
  }
  return undefined;
}

/** Skips a signed LEB128 (an i32.const immediate). */
function skipLeb(bytes: Uint8Array, pos: number): number | undefined {
  for (let i = 0; i < 5 && pos < bytes.length; i++) if ((bytes[pos++] & 0x80) === 0) return pos;
  return undefined;
}

/** The code section's bytes, or undefined. */
function codeSection(bytes: Uint8Array): Uint8Array | undefined {
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = readLeb(bytes, pos);
    if (!size) return undefined;
    const [length, start] = size;
    if (id === 10) return bytes.subarray(start, start + length);
    pos = start + length;
  }
  return undefined;
}

/** The `__flurry_global_<i>` export of the stack pointer, or undefined when the module shows none (among `mutable`). */
export function stackPointerExport(bytes: Uint8Array, mutable: Iterable<string>): string | undefined {
  const code = codeSection(bytes);
  if (!code) return undefined;
  const counts = new Map<number, number>();
  for (let i = 0; i < code.length; i++) {
    if (code[i] !== 0x23) continue; // global.get
    const get = readLeb(code, i + 1);
    if (!get || code[get[1]] !== 0x41) continue; // i32.const
    let pos = skipLeb(code, get[1] + 1);
    if (pos === undefined || code[pos] !== 0x6b) continue; // i32.sub
    pos++;
    if (code[pos] === 0x22) {
      // local.tee
      const tee = readLeb(code, pos + 1);
      if (!tee) continue;
      pos = tee[1];
    }
    if (code[pos] !== 0x24) continue; // global.set
    const set = readLeb(code, pos + 1);
    if (!set || set[0] !== get[0]) continue;
    counts.set(get[0], (counts.get(get[0]) ?? 0) + 1);
  }
  const names = new Set(mutable);
  let best: [index: number, count: number] | undefined;
  for (const [index, count] of counts) {
    if (!names.has(`${GLOBAL_EXPORT_PREFIX}${index}`)) continue;
    if (!best || count > best[1]) best = [index, count];
  }
  return best && best[1] >= 2 ? `${GLOBAL_EXPORT_PREFIX}${best[0]}` : undefined;
}
