import { describe, expect, it } from 'vitest';
import {
  chunkCount, chunkRange, decodeDescriptor, describeMemory, describeMemoryByPieces, encodeDescriptor, isZeroChunk, isZeroPage, SnapshotFormatError, verifyChunk,
} from './snapshot.js';
import type { SnapshotDescriptor } from './protocol.js';

function sample(): SnapshotDescriptor {
  const memory = new Uint8Array(4 * 65536); // 64 pages of 4 KiB, 4 chunks
  memory.fill(7, 4096, 8192); // page 1
  memory[65536 * 2 + 5] = 1; // page 32 (chunk 2)
  const { zeroPages, chunkHashes } = describeMemory(memory);
  return {
    snapshotId: 'snap_1', tenant: 'default', function: 'pattern', moduleDigest: 'ab'.repeat(32),
    memoryBytes: memory.length, maximumPages: 16, pageSize: 4096, chunkPages: 16,
    globals: [{ name: '__flurry_global_0', type: 'i64', value: '9007199254740993' }, { name: '__flurry_global_1', type: 'f64', value: 1.5 }],
    zeroPages, chunkHashes, serverHostId: 'host-1', createdAt: 1,
  };
}

describe('snapshot descriptor', () => {
  it('round trip - every field survives, i64 globals exactly', () => {
    const d = sample();
    const back = decodeDescriptor(encodeDescriptor(d));
    expect(back).toEqual(d);
    expect(back.globals[0].value).toBe('9007199254740993');
  });

  it('zero bitmap and chunks - describe which pages and chunks hold data', () => {
    const d = sample();
    expect(isZeroPage(d, 0)).toBe(true);
    expect(isZeroPage(d, 1)).toBe(false);
    expect(isZeroPage(d, 32)).toBe(false);
    expect(chunkCount(d)).toBe(4);
    expect([0, 1, 2, 3].map((c) => isZeroChunk(d, c))).toEqual([false, true, false, true]);
    expect(chunkRange(d, 1)).toEqual({ start: 65536, end: 131072 });
  });

  it('verify chunk - accepts the right bytes, refuses a corrupted page', () => {
    const d = sample();
    const chunk = new Uint8Array(65536);
    chunk.fill(7, 4096, 8192);
    expect(verifyChunk(d, 0, chunk)).toBe(true);
    chunk[5000] ^= 1;
    expect(verifyChunk(d, 0, chunk)).toBe(false);
  });

  it('describe by pieces - equals describing the whole memory', () => {
    const memory = new Uint8Array(3 * 1024 * 1024 + 65536);
    for (let i = 0; i < memory.length; i += 7919) memory[i] = i & 0xff;
    memory.fill(0, 1024 * 1024, 2 * 1024 * 1024);
    const whole = describeMemory(memory);
    const pieces = describeMemoryByPieces((o, l) => memory.subarray(o, o + l), memory.length);
    expect(pieces).toEqual(whole);
  });

  it('bad magic - refused', () => {
    const b = encodeDescriptor(sample());
    b[0] = 0x58;
    expect(() => decodeDescriptor(b)).toThrow(new SnapshotFormatError('not a snapshot descriptor: bad magic'));
  });

  it('wrong version - refused naming both versions', () => {
    const b = encodeDescriptor(sample());
    b[4] = 9;
    expect(() => decodeDescriptor(b)).toThrow(/version 9 is not supported \(this host reads version 1\)/);
  });

  it('truncated - refused', () => {
    const b = encodeDescriptor(sample());
    expect(() => decodeDescriptor(b.subarray(0, b.length - 1))).toThrow(/truncated/);
    expect(() => decodeDescriptor(b.subarray(0, 10))).toThrow(/truncated/);
  });

  it('wrong digest - a flipped body byte fails the checksum', () => {
    const b = encodeDescriptor(sample());
    b[40] ^= 0xff;
    expect(() => decodeDescriptor(b)).toThrow(/checksum mismatch/);
  });

  it('inconsistent sizes - refused even with a valid checksum', () => {
    const d = sample();
    expect(() => decodeDescriptor(encodeDescriptor({ ...d, memoryBytes: 1000 }))).toThrow(/whole number of wasm pages/);
    expect(() => decodeDescriptor(encodeDescriptor({ ...d, chunkHashes: new Uint8Array(3) }))).toThrow(/chunk hashes/);
  });
});
