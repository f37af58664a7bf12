/**
 * Callback signatures: each delivery carries
 *
 *     Flurry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
 *
 * with a secret of the job's tenant, so a receiver knows the POST came from
 * Flurry, for its tenant, unchanged and recently (docs/jobs.md, "Callbacks";
 * the SDK's verifyCallbackSignature checks it). Each tenant's secret is
 * derived from the gateways' one master secret with HKDF: every gateway
 * replica computes the same secrets without storing any, and one tenant's
 * secret tells nothing of another's or of the master.
 */
import { createHmac, hkdfSync } from 'node:crypto';

export const SIGNATURE_HEADER = 'flurry-signature';

/** The master secret and what is derived from it. Never logged: it serializes as `[redacted]`. */
export class CallbackSecrets {
  readonly #master: Buffer;

  constructor(master: string) {
    this.#master = Buffer.from(master, 'utf8');
  }

  /** The tenant's callback secret (64 hex characters), the same on every gateway with the same master. */
  forTenant(tenant: string): string {
    return Buffer.from(hkdfSync('sha256', this.#master, Buffer.alloc(0), `flurry callback secret v1\0${tenant}`, 32)).toString('hex');
  }

  toJSON(): string {
    return '[redacted]';
  }
}

/**
 * The header value signing `body` at `unixSeconds`.
 *
 * @example
 * signatureHeader(secret, body, Math.floor(Date.now() / 1000)); // 't=1733457600,v1=5f0c…'
 */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}
