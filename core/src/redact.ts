/**
 * What is secret in a log line, and how it is hidden. Two layers, both in
 * every service's logger (log.ts):
 *
 * - fields: values of fields with a secret's name (authorization, cookie,
 *   apiKey(s), password, token, secret, credentials, nkey, jwt…) at the top of
 *   a log object and inside the objects that carry them (config, headers,
 *   options, job and tenant records) are replaced by `[redacted]` (pino's
 *   `redact`; a collection by its size, `[redacted: 2]`, so a configuration
 *   still says how many keys it has);
 * - URLs: in the finished line, whatever its field or message (a NATS_URL in
 *   the configuration, a callback URL, a broker error's text, a stack), the
 *   password of `scheme://user:password@host` and a token in
 *   `scheme://token@host` are replaced, and so are the values of query
 *   parameters with a secret's name (`?token=…`, `&api_key=…`); bare NATS
 *   nkey seeds and JWTs anywhere in the line are replaced too.
 */

/** Field names whose values are never logged. */
const SECRET_FIELDS = [
  'authorization', 'Authorization', 'cookie', 'Cookie', '["set-cookie"]', '["x-api-key"]', '["proxy-authorization"]',
  'apiKey', 'apiKeys', 'api_key', 'password', 'pass', 'passwd', 'token', 'accessToken', 'secret', 'secrets', 'callbackSecret', 'signingSecret',
  'credentials', 'creds', 'nkey', 'seedKey', 'jwt', 'privateKey', 'natsPassword', 'natsToken', 'natsCreds', 'natsCredentials', 'natsNkey',
];

/** Objects that carry secret fields one level down: the logged configuration, request headers, options, job and tenant records. */
const SECRET_CONTAINERS = ['config', 'config.nats', 'headers', 'req.headers', 'request.headers', 'options', 'opts', 'nats', 'job', 'tenant', 'callback', 'auth'];

/**
 * pino `redact` paths: each secret field at the top of a log object and in
 * each container. Explicit paths only: pino's wildcard paths (`*.password`)
 * cost over 100 µs a line, explicit ones nothing measurable.
 */
export const SECRET_LOG_PATHS: string[] = [
  ...SECRET_FIELDS,
  ...SECRET_CONTAINERS.flatMap((c) => SECRET_FIELDS.map((f) => (f.startsWith('[') ? `${c}${f}` : `${c}.${f}`))),
];

/** pino's censor: a secret collection is shown by its size only. */
export function censorSecret(value: unknown): string {
  if (value instanceof Map || value instanceof Set) return `[redacted: ${value.size}]`;
  if (Array.isArray(value)) return `[redacted: ${value.length}]`;
  return '[redacted]';
}

/** `scheme://userinfo@`: userinfo runs to the `@` over anything but a path, query or fragment start and spaces (a quote only JSON-escaped). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)((?:[^\s/?#@"\\]|\\.)+)@/gi;
/** A query parameter with a secret's name, up to the next `&`, `#`, space or JSON quote. */
const SECRET_QUERY = /([?&](?:token|access_token|api[_-]?key|key|secret|password|passwd|auth|sig|signature)=)[^&#\s"\\]+/gi;

/** A NATS nkey seed (`SU…`, `SA…`, `SO…`: the private half of a user, account or operator key) or a JWT (a NATS user's, a bearer token). */
// No \b: in a JSON line a seed on its own line follows the `n` of an escaped newline.
const BARE_CREDENTIAL = /(?<![A-Z2-7])S[UAOCNPX][A-Z2-7]{56}(?![A-Z2-7])|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+/g;

/**
 * A finished log line without credentials: those of URLs
 * (withoutUrlCredentials), and bare NATS nkey seeds and JWTs, such as a
 * `.creds` file's contents quoted in an error.
 */
export function withoutCredentials(line: string): string {
  return withoutUrlCredentials(line).replace(BARE_CREDENTIAL, '[redacted]');
}

/**
 * `text` without the credentials of the URLs in it: `nats://user:pw@h` becomes
 * `nats://user:[redacted]@h`, `nats://tok@h` becomes `nats://[redacted]@h`,
 * `https://h/cb?token=abc` becomes `https://h/cb?token=[redacted]`.
 *
 * @example
 * console.log(`nats at ${withoutUrlCredentials(natsUrl)}`);
 */
export function withoutUrlCredentials(text: string): string {
  if (!text.includes('://')) return text;
  return text
    .replace(URL_USERINFO, (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return colon < 0 ? `${scheme}[redacted]@` : `${scheme}${userinfo.slice(0, colon)}:[redacted]@`;
    })
    .replace(SECRET_QUERY, '$1[redacted]');
}
