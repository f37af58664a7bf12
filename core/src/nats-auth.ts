/**
 * A process's NATS identity: the user it connects as (one per role:
 * `gateway`, `host-<id>`, `admin`; infra/src/nats-permissions.ts makes them)
 * and the inbox prefix its permissions allow it to subscribe to, so that no
 * process can read another's replies.
 *
 *   const auth = readNatsAuth(new EnvReader(process.env)); // NATS_USER, NATS_PASSWORD, NATS_INBOX_PREFIX
 *   await connectFabric({ ..., auth });
 */
import { ConfigError, type EnvReader } from './config.js';

export interface NatsAuth {
  user: string;
  password: string;
  /** Replies to this process's requests arrive below this prefix (`_INBOX_<role>`). */
  inboxPrefix: string;
}

/** A worker host's NATS user: its credentials name its host id. */
export function hostUser(hostId: string): string {
  return `host-${hostId}`;
}

/** The host id a NATS user is for, or undefined when it is no host's. */
export function hostIdOfUser(user: string): string | undefined {
  return user.startsWith('host-') ? user.slice('host-'.length) : undefined;
}

/** The inbox prefix of a NATS user: its own, so that its permissions can allow exactly that. */
export function inboxPrefixFor(user: string): string {
  return `_INBOX_${user}`;
}

/**
 * NATS_USER and NATS_PASSWORD (both or neither), NATS_INBOX_PREFIX (default
 * `_INBOX_<user>`). The password never appears when the result is logged.
 */
export function readNatsAuth(r: EnvReader): NatsAuth | undefined {
  const user = r.optionalString('NATS_USER');
  const password = r.optionalString('NATS_PASSWORD');
  if (user === undefined && password === undefined) return undefined;
  if (user === undefined || password === undefined) throw new ConfigError('NATS_USER and NATS_PASSWORD must be set together');
  const inboxPrefix = r.string('NATS_INBOX_PREFIX', inboxPrefixFor(user));
  if (!/^[A-Za-z0-9_-]+$/.test(inboxPrefix)) throw new ConfigError(`NATS_INBOX_PREFIX must be one subject token (letters, digits, _ and -), got "${inboxPrefix}"`);
  const auth: NatsAuth = { user, password, inboxPrefix };
  Object.defineProperty(auth, 'toJSON', { value: () => ({ user, password: '[redacted]', inboxPrefix }) });
  return auth;
}
