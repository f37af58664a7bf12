/** The CLI's text layout: aligned columns and human units. */
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration } from './human-units.js';
import { formatFields, formatTable } from './table.js';
import { hostsTable } from './cli-views.js';

describe('table', () => {
  it('table - pads columns to the widest cell, right-aligns where asked, trims line ends', () => {
    const table = formatTable(
      [{ header: 'NAME' }, { header: 'SIZE', align: 'right' }, { header: 'NOTE' }],
      [
        ['a', '1 B', ''],
        ['longer-name', '12.5 KiB', 'x'],
      ],
    );
    expect(table.split('\n')).toEqual([
      'NAME             SIZE  NOTE',
      'a                 1 B',
      'longer-name  12.5 KiB  x',
      '',
    ]);
  });

  it('table - with no rows prints only the header', () => {
    expect(formatTable([{ header: 'ID' }, { header: 'PID' }], [])).toBe('ID  PID\n');
  });

  it('table - fields align their values', () => {
    expect(formatFields([['name', 'echo'], ['digest', 'ab12']])).toBe('name    echo\ndigest  ab12\n');
  });
});

describe('human units', () => {
  it('human units - bytes use binary units with one decimal', () => {
    expect([0, 1023, 1536, 16 * 2 ** 20, 3 * 2 ** 30].map(formatBytes)).toEqual(['0 B', '1023 B', '1.5 KiB', '16.0 MiB', '3.0 GiB']);
  });

  it('human units - durations use the largest whole unit, and the future is now', () => {
    expect([-500, 850, 12_000, 4 * 60_000, 3 * 3_600_000, 2 * 86_400_000].map(formatDuration)).toEqual(['0ms', '850ms', '12s', '4m', '3h', '2d']);
  });
});

describe('hosts table', () => {
  it('hosts table - a user key\'s capacity-only hosts show - where an admin sees hostname, pid, warm functions and instances', () => {
    const now = Date.now();
    const capacity = { id: 'host-a', startedAt: now - 60_000, heartbeatAt: now - 2_000, cores: 8, memoryBytes: 2 ** 34, guestSlots: 8, runningGuests: 3, pager: 'userfaultfd' as const, draining: false, state: 'active' as const, releasable: false };
    const full = { ...capacity, id: 'host-b', pid: 4242, hostname: 'alpha', warm: [{ tenant: 'default', name: 'echo', digest: 'ab' }], instances: [] };
    const [, user, admin] = hostsTable([capacity, full], now).trimEnd().split('\n');
    expect(user.split(/\s+/).slice(0, 9)).toEqual(['host-a', '-', '-', '8', '3', '-', 'userfaultfd', 'active', '-']);
    expect(admin.split(/\s+/).slice(0, 9)).toEqual(['host-b', 'alpha', '4242', '8', '3', '1', 'userfaultfd', 'active', '0']);
  });
});
