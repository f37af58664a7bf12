/**
 * JetStream API calls that wait out a broker that does not answer yet: a
 * cluster still forming (its routes settle about a second after the
 * metadata leader is elected, and a request sent before may be lost), a
 * stream whose leader is being elected again after its node was lost. Such a
 * call is tried again with back-off for a bounded time, then fails with the
 * last error; any other error (a wrong configuration, a refusal) ends it at
 * once.
 *
 *   const kv = await retryJetStream('opening bucket flurry_hosts', () => kvm.create('flurry_hosts', opts));
 */
import { isBrokerFailure } from './broker-link.js';
import { FlurryError } from './errors.js';

/** How long a store's opening waits for JetStream: longer than a cluster's elections (a few seconds), short enough to fail clearly. */
export const JETSTREAM_GIVE_UP_MS = 30_000;

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

/** Runs `call` until it resolves, an error other than a broker failure (isBrokerFailure), or `giveUpMs`; the final error says `what` failed and why. */
export async function retryJetStream<T>(what: string, call: () => Promise<T>, giveUpMs = JETSTREAM_GIVE_UP_MS): Promise<T> {
  const deadline = Date.now() + giveUpMs;
  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isBrokerFailure(err)) throw err;
      if (Date.now() + backoff > deadline) {
        throw new FlurryError('unavailable', `${what}: JetStream did not answer within ${giveUpMs} ms (${attempt} attempts): ${(err as Error).message}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    }
  }
}

