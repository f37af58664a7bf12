import { describe, expect, it } from 'vitest';
import { RoomLedger } from './room-ledger.js';

const msgs = (...texts: string[]) => texts.map((text, i) => ({ seq: i + 1, name: 'ada', text }));

describe('room ledger', () => {
  it('check - acknowledged texts at their seq and applied unknowns pass', () => {
    const l = new RoomLedger();
    l.acknowledge('a', 1);
    l.uncertain('b');
    l.acknowledge('c', 3);
    l.uncertain('d');
    expect(l.check(msgs('a', 'b', 'c'))).toEqual({ lost: [], phantom: [], contiguous: true, acknowledged: 2, unknownApplied: 1, unknownDropped: 1 });
  });

  it('check - an acknowledged text missing or at another seq is lost', () => {
    const l = new RoomLedger();
    l.acknowledge('a', 1);
    l.acknowledge('b', 2);
    expect(l.check(msgs('b')).lost).toEqual(['a', 'b']);
  });

  it('check - a text nobody sent, or one held twice, is a phantom; a gap breaks the run', () => {
    const l = new RoomLedger();
    l.acknowledge('a', 1);
    l.uncertain('b');
    const c = l.check([...msgs('a', 'b', 'b', 'zz'), { seq: 9, name: 'ada', text: 'b2' }]);
    expect(c.phantom).toEqual(['b', 'zz', 'b2']);
    expect(c.contiguous).toBe(false);
  });

  it('acknowledge - an answer that came after all makes an unknown acknowledged', () => {
    const l = new RoomLedger();
    l.uncertain('a');
    l.acknowledge('a', 1);
    l.uncertain('a');
    expect(l.check(msgs('a'))).toMatchObject({ acknowledged: 1, unknownApplied: 0, unknownDropped: 0 });
  });
});
