/**
 * Who is calling: the gateway's API keys, kept as SHA-256 digests only, and
 * the lookup of a request's bearer key. The presented key is hashed and
 * compared with every known digest by `timingSafeEqual`, without stopping at
 * a match, so the time taken depends on the number of keys, never on how much
 * of a key a guess got right.
 *
 * Without keys (FLURRY_AUTH=none) every caller is the admin of the default
 * tenant: a fleet for one person on one machine.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { DEFAULT_TENANT, FlurryError, type ApiKeyEntry, type Role } from '@flurry/core';

export interface Caller {
  tenant: string;
  role: Role;
}

/** Longer bearer tokens are refused before hashing; generated keys are 47 characters. */
const MAX_KEY_LENGTH = 512;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const NO_AUTH_CALLER: Caller = Object.freeze({ tenant: DEFAULT_TENANT, role: 'admin' });

export class KeyRing {
  private readonly digests: Buffer[];
  private readonly callers: Caller[];

  private constructor(entries: readonly ApiKeyEntry[] | undefined) {
    this.required = entries !== undefined;
    this.digests = (entries ?? []).map((e) => Buffer.from(e.sha256, 'hex'));
    this.callers = (entries ?? []).map((e) => Object.freeze({ tenant: e.tenant, role: e.role }));
  }

  /** False when the gateway runs without authentication (FLURRY_AUTH=none). */
  readonly required: boolean;

  static withKeys(entries: readonly ApiKeyEntry[]): KeyRing {
    return new KeyRing(entries);
  }

  static none(): KeyRing {
    return new KeyRing(undefined);
  }

  /** For the start-up log: how many keys of each role, nothing that identifies one. */
  describe(): string {
    if (!this.required) return 'none (FLURRY_AUTH=none: every caller is admin of the default tenant)';
    const admins = this.callers.filter((c) => c.role === 'admin').length;
    return `${this.callers.length} keys (${admins} admin, ${this.callers.length - admins} user)`;
  }

  /** The caller behind an `Authorization` header; 401 without a bearer key or with an unknown one. */
  identify(authorization: string | undefined): Caller {
    if (!this.required) return NO_AUTH_CALLER;
    const key = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
    if (key === undefined || key.length > MAX_KEY_LENGTH) throw unauthorized();
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let found = -1;
    for (let i = 0; i < this.digests.length; i++) if (timingSafeEqual(digest, this.digests[i])) found = i;
    if (found < 0) throw unauthorized();
    return this.callers[found];
  }
}

function unauthorized(): FlurryError {
  return new FlurryError('unauthorized', 'missing or unknown API key (send Authorization: Bearer <key>)');
}
