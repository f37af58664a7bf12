/** GuestMemory's text getter convention: written in place when it fits, the encoding's first bytes when cut, the full length always. */
import { describe, expect, it } from 'vitest';
import { GuestMemory } from './guest-memory.js';

function attached(pages = 1): { memory: GuestMemory; wasm: WebAssembly.Memory } {
  const wasm = new WebAssembly.Memory({ initial: pages, maximum: pages + 1 });
  const memory = new GuestMemory();
  memory.attach(wasm);
  return { memory, wasm };
}

const bytesAt = (wasm: WebAssembly.Memory, ptr: number, n: number) => [...new Uint8Array(wasm.buffer, ptr, n)];

describe('GuestMemory.writeText', () => {
  it('writeText - the UTF-8 of a text that fits, at the pointer, and its length', () => {
    const { memory, wasm } = attached();
    expect(memory.writeText(100, 16, 'héllo')).toBe(6);
    expect(bytesAt(wasm, 100, 7)).toEqual([...new TextEncoder().encode('héllo'), 0]);
  });

  it('writeText - cut short: the first cap bytes of the encoding (a character cut in two), the full length answered', () => {
    const { memory, wasm } = attached();
    // "aé" is 61 c3 a9: a cap of 2 cuts é after its first byte.
    expect(memory.writeText(10, 2, 'aé')).toBe(3);
    expect(bytesAt(wasm, 10, 3)).toEqual([0x61, 0xc3, 0]);
    expect(memory.writeText(10, 0, 'aé')).toBe(3);
  });

  it('writeText - past the end of memory traps, and writes nothing', () => {
    const { memory, wasm } = attached();
    expect(() => memory.writeText(65_534, 8, 'abcd')).toThrow(/out of bounds/);
    expect(bytesAt(wasm, 65_532, 4)).toEqual([0, 0, 0, 0]);
  });

  it('writeText - after the memory grew (its old buffer detached) writes into the new one', () => {
    const { memory, wasm } = attached();
    memory.writeText(0, 4, 'ab');
    wasm.grow(1);
    expect(memory.writeText(65_536 + 10, 4, 'cd')).toBe(2);
    expect(bytesAt(wasm, 65_546, 2)).toEqual([0x63, 0x64]);
    expect(memory.u32(0) & 0xffff).toBe(0x6261);
  });
});
