/**
 * Answering a request whose reply carries a guest's data (its output, its
 * headers, its error): a reply the broker would refuse (larger than its
 * `max_payload`) is replaced by a small error answer, and a publish that
 * throws is logged: neither ends the host. One module's 10 MiB trap message
 * once took a host down through `msg.respond`.
 *
 *   replyWith(msg, nc, reply, (bytes, limit) => ({ ok: false, error: { code: 'output_limit', message: ... } }), log);
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { encode, maxPayload, type Logger } from '@flurry/core';

/** Room left in a reply for the envelope around a guest's output (status, headers, ids). */
export const REPLY_HEADROOM_BYTES = 64 * 1024;

/** Sends `value` as the reply to `msg`, or what `tooLarge(bytes, limit)` makes of it when it would not fit. */
export function replyWith(msg: Msg, nc: NatsConnection, value: unknown, tooLarge: (bytes: number, limit: number) => unknown, log: Logger): void {
  let data = encode(value);
  const limit = maxPayload(nc);
  if (data.length > limit) data = encode(tooLarge(data.length, limit));
  try {
    msg.respond(data);
  } catch (err) {
    log.warn({ subject: msg.subject, bytes: data.length, err: (err as Error).message }, 'a reply could not be sent');
  }
}
