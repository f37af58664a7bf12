import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger, decodeChecked } from '@flurry/core';
import { GuestLogPublisher, guestLogSubject, MAX_IN_FLIGHT, MAX_QUEUED } from './guest-log-publisher.js';

const quiet = createLogger('test', {}, 'silent');
const run = (...messages: string[]) => ({ logs: messages.map((message) => ({ level: 'info' as const, message })), droppedLogLines: 0 });
const fn = { kind: 'function', name: 'echo' } as const;

/** A publisher whose store records each batch and answers as `answer` says. */
function publisher(answer: () => Promise<unknown> = async () => undefined, connected = true) {
  const stored: { subject: string; data: Uint8Array }[] = [];
  const p = new GuestLogPublisher({
    store: (subject, data) => {
      stored.push({ subject, data });
      return answer();
    },
    connected: () => connected,
    hostId: 'host-1',
    log: quiet,
  });
  return { p, stored };
}

describe('GuestLogPublisher', () => {
  it('publish - returns before anything is sent; the batch goes out on a later turn, under its subject', async () => {
    const { p, stored } = publisher();
    p.publish('acme', fn, 'req-1', { ...run('one', 'two'), droppedLogLines: 3 });
    expect(stored).toEqual([]);
    await nextTurn();
    expect(stored.map((s) => s.subject)).toEqual(['flurry.logs.acme.fn.echo']);
    const batch = decodeChecked('GuestLogBatch', stored[0].data);
    expect(batch).toMatchObject({ tenant: 'acme', source: fn, requestId: 'req-1', hostId: 'host-1', dropped: 3, lines: [{ level: 'info', message: 'one' }, { level: 'info', message: 'two' }] });
    await nextTurn();
    expect(p.published).toBe(1);
  });

  it('a run that logged nothing - publishes nothing', async () => {
    const { p, stored } = publisher();
    p.publish('acme', fn, 'req-1', run());
    await nextTurn();
    expect(stored).toEqual([]);
    expect(p.dropped).toBe(0);
  });

  it('broker away - the batch is dropped and counted, nothing waits', async () => {
    const { p, stored } = publisher(undefined, false);
    p.publish('acme', fn, 'req-1', run('lost'));
    await nextTurn();
    expect(stored).toEqual([]);
    expect(p.dropped).toBe(1);
  });

  it('slow broker - at most MAX_IN_FLIGHT sent at once and MAX_QUEUED waiting; the rest dropped and counted', async () => {
    const { p, stored } = publisher(() => new Promise(() => undefined));
    const extra = 5;
    for (let i = 0; i < MAX_IN_FLIGHT + MAX_QUEUED + extra; i++) {
      p.publish('acme', fn, `req-${i}`, run('line'));
      // The first MAX_IN_FLIGHT leave the queue on the next turn; until then it holds MAX_QUEUED.
      if (i === MAX_IN_FLIGHT - 1) await nextTurn();
    }
    await nextTurn();
    expect(stored).toHaveLength(MAX_IN_FLIGHT);
    expect(p.dropped).toBe(extra);
  });

  it('refused by the stream - counted as dropped, and the next batch is still sent', async () => {
    let refuse = true;
    const { p, stored } = publisher(async () => {
      if (refuse) throw new Error('no stream');
    });
    p.publish('acme', fn, 'req-1', run('a'));
    await nextTurn();
    await nextTurn();
    expect(p.dropped).toBe(1);
    refuse = false;
    p.publish('acme', fn, 'req-2', run('b'));
    await nextTurn();
    await nextTurn();
    expect(stored).toHaveLength(2);
    expect(p.published).toBe(1);
  });

  it('subjects - the tenant first, then what ran', () => {
    expect(guestLogSubject('t', { kind: 'clone', jobId: 'job-1', index: 7 })).toBe('flurry.logs.t.job.job-1.7');
    expect(guestLogSubject('t', { kind: 'reduce', jobId: 'job-1' })).toBe('flurry.logs.t.job.job-1.reduce');
    expect(guestLogSubject('t', { kind: 'service', service: 'room', instanceId: 'i-1' })).toBe('flurry.logs.t.svc.room');
  });
});
