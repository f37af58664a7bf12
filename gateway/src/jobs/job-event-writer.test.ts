import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { decode, type BrokerLink, type JobEvent } from '@flurry/core';
import { JobEventWriter } from './job-event-writer.js';

/** A writer over a stream whose acknowledgements the test gives, one publish at a time. */
function writer() {
  const published: JobEvent[] = [];
  const acks: (() => void)[] = [];
  const js = {
    publish: (_subject: string, data: Uint8Array) => {
      published.push(decode(data) as JobEvent);
      const seq = published.length;
      return new Promise((resolve) => acks.push(() => resolve({ stream: 'FLURRY_JOB_EVENTS', seq, duplicate: false })));
    },
  };
  const link = { connected: true } as BrokerLink;
  const w = new JobEventWriter(js as never, () => false, link, pino({ level: 'silent' }), () => undefined);
  return { w, published, acks };
}

const event = (kind: JobEvent['kind'], host?: string): JobEvent => ({ kind, at: 0, tenant: 't', jobId: 'job-1', ...(host ? { host } : {}) });
const microtask = () => Promise.resolve();
const drained = () => new Promise((r) => setImmediate(r));

describe('job event writer', () => {
  it('an event appended while the last one is acknowledged is written without waiting for another event', async () => {
    // As a fork reply and the last event's acknowledgement arrive together: the reply's `forked` is
    // appended some promise steps into the handling of that acknowledgement. Each step is tried.
    for (let steps = 0; steps < 12; steps++) {
      const { w, published, acks } = writer();
      w.append(event('snapshot', 'host-1'));
      expect(published).toHaveLength(1);
      acks[0]();
      for (let i = 0; i < steps; i++) await microtask();
      w.append(event('forked', 'host-2'));
      // No timer runs here and no other event is appended: only the writer itself writes it.
      await drained();
      expect(published.map((e) => e.kind), `appended ${steps} promise steps after the acknowledgement`).toEqual(['snapshot', 'forked']);
    }
  });

  it('events are written one at a time, in order, each after the previous one is stored', async () => {
    const { w, published, acks } = writer();
    w.append(event('placed', 'host-1'));
    w.append(event('snapshot', 'host-1'));
    w.append(event('done'));
    await drained();
    expect(published.map((e) => e.kind)).toEqual(['placed']);
    acks[0]();
    await drained();
    expect(published.map((e) => e.kind)).toEqual(['placed', 'snapshot']);
    acks[1]();
    await drained();
    expect(published.map((e) => e.kind)).toEqual(['placed', 'snapshot', 'done']);
  });
});
