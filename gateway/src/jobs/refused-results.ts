/**
 * Clone results the coordinator refused: a result must come from an attempt
 * it sent for that index (the fork request id, unguessable, is the proof) to
 * the host the result names. Anything else is a forgery or a confused host:
 * counted, logged (the first ones and then every thousandth, so that a flood
 * cannot fill the log), and dropped from the results stream so that it does
 * not stand in the way of the real result (the stream keeps one per index).
 */
import type { CloneResult, Logger } from '@flurry/core';

const LOG_FIRST = 10;
const LOG_EVERY = 1000;

/** Results refused by this gateway's coordinators since it started. */
export const refusedResults = {
  count: 0,
  note(log: Logger, jobId: string, r: Pick<CloneResult, 'index' | 'requestId' | 'hostId'>, why: string): void {
    const count = ++this.count;
    if (count <= LOG_FIRST || count % LOG_EVERY === 0) log.warn({ jobId, index: r.index, requestId: r.requestId, claimedHost: r.hostId, why, refusedResults: count }, 'clone result refused');
  },
};
