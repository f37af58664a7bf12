/**
 * The CLI's config file: named contexts, each a gateway URL and an API key, and which one is current.
 *
 *   current: local
 *   contexts:
 *     local:
 *       url: http://127.0.0.1:8080
 *       key: flk_...
 *
 * It lives in $FLURRY_CONFIG, else $XDG_CONFIG_HOME/flurry/config.yaml (by default
 * ~/.config/flurry/config.yaml). It holds keys, so it is written with mode 0600, through a
 * temporary file renamed over the old one: a reader never sees half a file. What is read is
 * checked as any input: unknown fields and malformed values are refused with the file's name.
 *
 * @example
 * const path = configPath(process.env);
 * writeConfig(path, addContext(readConfig(path), 'prod', { url: 'https://flurry.example.com', key }));
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse, stringify } from 'yaml';

/** One gateway and the key to use with it (none for a gateway that runs without keys). */
export interface ContextEntry {
  url: string;
  key?: string;
}

export interface CliConfig {
  current?: string;
  contexts: Record<string, ContextEntry>;
}

/** The file is unreadable, not YAML, or not the shape above; or a change to it names no context. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Where the config file is: $FLURRY_CONFIG, else the XDG config folder. */
export function configPath(env: Record<string, string | undefined>): string {
  const explicit = env.FLURRY_CONFIG?.trim();
  if (explicit) return explicit;
  // The XDG spec says a relative XDG_CONFIG_HOME is to be ignored.
  const xdg = env.XDG_CONFIG_HOME?.trim();
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME?.trim() || homedir(), '.config');
  return join(base, 'flurry', 'config.yaml');
}

/** The config at `path`; no file is an empty config. */
export function readConfig(path: string): CliConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw new ConfigFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (err) {
    throw new ConfigFileError(`${path} is not YAML: ${(err as Error).message}`);
  }
  return checkConfig(document ?? {}, path);
}

/** Writes `config` to `path` with mode 0600 (its folder made 0700 if missing). */
export function writeConfig(path: string, config: CliConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    // A leftover of a writer that died would keep its own mode: start afresh.
    rmSync(temporary, { force: true });
    writeFileSync(temporary, stringify(config), { mode: 0o600, flag: 'wx' });
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new ConfigFileError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

/** `config` with context `name` added or replaced; the first context becomes current, there being no other to use. */
export function addContext(config: CliConfig, name: string, entry: ContextEntry): CliConfig {
  checkName(name);
  const checked = checkEntry(entry, `context "${name}"`);
  return { current: config.current ?? name, contexts: { ...config.contexts, [name]: checked } };
}

export function useContext(config: CliConfig, name: string): CliConfig {
  if (!(name in config.contexts)) throw new ConfigFileError(noSuchContext(config, name));
  return { ...config, current: name };
}

/** `config` without context `name`; removing the current one leaves none current. */
export function removeContext(config: CliConfig, name: string): CliConfig {
  if (!(name in config.contexts)) throw new ConfigFileError(noSuchContext(config, name));
  const { [name]: _removed, ...contexts } = config.contexts;
  return { current: config.current === name ? undefined : config.current, contexts };
}

export function noSuchContext(config: CliConfig, name: string): string {
  const names = Object.keys(config.contexts);
  return `no context "${name}" (${names.length === 0 ? 'none defined: flurry context add NAME --url URL' : `defined: ${names.join(', ')}`})`;
}

function checkConfig(document: unknown, path: string): CliConfig {
  const fail = (what: string): never => {
    throw new ConfigFileError(`${path}: ${what}`);
  };
  if (!isPlainObject(document)) return fail('expected a mapping with "current" and "contexts"');
  for (const field of Object.keys(document)) if (field !== 'current' && field !== 'contexts') fail(`unknown field "${field}"`);
  const contextsField = document.contexts ?? {};
  if (!isPlainObject(contextsField)) return fail('"contexts" must be a mapping of names to { url, key }');
  const contexts: Record<string, ContextEntry> = {};
  for (const [name, entry] of Object.entries(contextsField)) {
    if (!CONTEXT_NAME.test(name)) fail(`context name "${name}": use letters, digits, '.', '_' and '-'`);
    try {
      contexts[name] = checkEntry(entry, `context "${name}"`);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  const current = document.current;
  if (current !== undefined && current !== null && (typeof current !== 'string' || !(current in contexts))) {
    fail(`"current" names no defined context: ${JSON.stringify(current)}`);
  }
  return { current: typeof current === 'string' ? current : undefined, contexts };
}

function checkEntry(entry: unknown, what: string): ContextEntry {
  if (!isPlainObject(entry)) throw new ConfigFileError(`${what}: expected { url, key }`);
  for (const field of Object.keys(entry)) if (field !== 'url' && field !== 'key') throw new ConfigFileError(`${what}: unknown field "${field}"`);
  const { url, key } = entry;
  if (typeof url !== 'string' || !isHttpUrl(url)) throw new ConfigFileError(`${what}: url must be an http or https URL, got ${JSON.stringify(url)}`);
  if (key !== undefined && key !== null && (typeof key !== 'string' || key.trim() === '' || /\s/.test(key))) {
    throw new ConfigFileError(`${what}: key must be a string without spaces`);
  }
  return typeof key === 'string' ? { url, key } : { url };
}

function checkName(name: string): void {
  if (!CONTEXT_NAME.test(name)) throw new ConfigFileError(`context name "${name}": use letters, digits, '.', '_' and '-' (at most 63)`);
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
