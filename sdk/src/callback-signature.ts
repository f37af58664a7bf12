/**
 * Checking a job callback's `Flurry-Signature` header in the receiver
 * (docs/jobs.md, "Callbacks"): `t=<unix seconds>,v1=<hex>`, the hex being
 * HMAC-SHA256 of `"<t>." + body` keyed with the tenant's callback secret
 * (`flurry.jobs.callbackSecret()`). Web Crypto only, so it runs in Node,
 * Deno, Bun, edge workers and browsers alike; its `verify` compares in
 * constant time.
 */

/** The default tolerance: a signature older or newer than this is refused (a replayed delivery). */
const DEFAULT_TOLERANCE_SECONDS = 300;

export interface VerifyCallbackOptions {
  /** How far the signature's time may be from now, in seconds (default 300; 0: any time). */
  toleranceSeconds?: number;
  /** Now, in ms since the epoch (tests). */
  now?: number;
}

/**
 * True when `signatureHeader` (the `Flurry-Signature` header) signs exactly
 * `body` (the raw request body, before any JSON parsing) with `secret`, within
 * the tolerance.
 *
 * @example
 * const body = await request.text();
 * if (!(await verifyCallbackSignature(secret, body, request.headers.get('flurry-signature')))) return new Response(null, { status: 401 });
 * const job = JSON.parse(body) as JobRecord;
 */
export async function verifyCallbackSignature(
  secret: string,
  body: string | Uint8Array,
  signatureHeader: string | null | undefined,
  options: VerifyCallbackOptions = {},
): Promise<boolean> {
  const parsed = parseSignatureHeader(signatureHeader);
  if (!parsed) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (tolerance > 0 && Math.abs(nowSeconds - parsed.t) > tolerance) return false;
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const bytes = typeof body === 'string' ? encoder.encode(body) : body;
  const prefix = encoder.encode(`${parsed.t}.`);
  const signed = new Uint8Array(prefix.length + bytes.length);
  signed.set(prefix);
  signed.set(bytes, prefix.length);
  return crypto.subtle.verify('HMAC', key, parsed.v1, signed);
}

/** `t=<unix seconds>,v1=<64 hex>`. */
function parseSignatureHeader(header: string | null | undefined): { t: number; v1: Uint8Array<ArrayBuffer> } | undefined {
  if (!header || header.length > 4096) return undefined;
  let t: number | undefined;
  let v1: Uint8Array<ArrayBuffer> | undefined;
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/i.test(value)) v1 = hexBytes(value);
  }
  return t === undefined || v1 === undefined ? undefined : { t, v1 };
}

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
