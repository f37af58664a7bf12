/**
 * Which gateway the CLI talks to, and with which key. Each comes from the first of:
 * a flag (--url, --api-key), the environment (FLURRY_URL, FLURRY_API_KEY), the context
 * (--context or FLURRY_CONTEXT, else the config file's current one), and last the
 * default URL and the local fleet's key finder (local-fleet-key.ts).
 *
 * A context's key goes only to that context's gateway: with another URL from a flag or the
 * environment, the key must come from a flag or the environment too (or the local finder).
 *
 * @example
 * resolveConnection({ config, localKey: (url) => undefined }) // { url: current context's, apiKey: its key }
 */
import { noSuchContext, type CliConfig } from './cli-config-file.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface ConnectionInputs {
  /** From --url or FLURRY_URL. */
  url?: string;
  /** From --api-key or FLURRY_API_KEY. */
  apiKey?: string;
  /** From --context or FLURRY_CONTEXT. */
  contextName?: string;
  config: CliConfig;
  /** The local fleet's key for a URL, when it is on this machine. */
  localKey: (url: string) => string | undefined;
}

export interface Connection {
  url: string;
  apiKey?: string;
}

/** Thrown for a --context that the config file does not define. */
export class UnknownContextError extends Error {
  override readonly name = 'UnknownContextError';
}

export function resolveConnection(inputs: ConnectionInputs): Connection {
  const { config } = inputs;
  const name = inputs.contextName ?? config.current;
  if (inputs.contextName !== undefined && !(inputs.contextName in config.contexts)) {
    throw new UnknownContextError(`--context: ${noSuchContext(config, inputs.contextName)}`);
  }
  const entry = name === undefined ? undefined : config.contexts[name];
  const url = inputs.url ?? entry?.url ?? DEFAULT_URL;
  const contextKey = entry !== undefined && sameGateway(entry.url, url) ? entry.key : undefined;
  const apiKey = inputs.apiKey ?? contextKey ?? inputs.localKey(url);
  return { url, apiKey };
}

/** The same gateway: URLs equal but for a trailing slash or the case of the host. */
function sameGateway(a: string, b: string): boolean {
  const normal = (text: string) => {
    try {
      return new URL(text).href.replace(/\/+$/, '');
    } catch {
      return text;
    }
  };
  return normal(a) === normal(b);
}
