/** The `pattern` guest's clone output (functions/pattern/index.ts) and the check the fork suites make of a pattern job. */
import { expect } from 'vitest';

export interface PatternOutput {
  index: number;
  count: number;
  ok: boolean;
  mib: number;
  mismatches: number;
  checksum: string;
  writeOk: boolean;
  entropyHex: string;
  /** How often init ran in the memory the clone started from: 1 for a clone of one parent. */
  inits: number;
  /** on_restore() ran: the clone started from a snapshot. */
  restored: boolean;
}

/** Every clone of `outputs` verified the whole parent memory, from one init, and they all read the same memory. */
export function expectOneParent(outputs: PatternOutput[], clones: number): void {
  for (const o of outputs) expect(o).toMatchObject({ ok: true, count: clones, mismatches: 0, inits: 1, restored: true });
  expect(new Set(outputs.map((o) => o.checksum)).size).toBe(1);
}
