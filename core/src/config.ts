/**
 * Typed readers for configuration from an environment passed in (never read
 * `process.env` deep inside a module). Each service has one `loadConfig(env)`
 * built from these; a bad value stops the service with a message naming the
 * variable.
 */
import { withoutUrlCredentials } from './redact.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** Reads variables from `env`; every reader names the variable in its error. */
export class EnvReader {
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  /** An integer in [min, max]. */
  int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v)) throw new ConfigError(`${name} must be an integer, got "${v}"`);
    const n = Number(v);
    if (range.min !== undefined && n < range.min) throw new ConfigError(`${name} must be at least ${range.min}, got ${n}`);
    if (range.max !== undefined && n > range.max) throw new ConfigError(`${name} must be at most ${range.max}, got ${n}`);
    return n;
  }

  /** A size: a plain byte count or a number with KiB/MiB/GiB (also k/m/g). */
  bytes(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = parseSize(name, v);
    if (range.min !== undefined && n < range.min) throw new ConfigError(`${name} must be at least ${range.min} bytes, got ${n}`);
    if (range.max !== undefined && n > range.max) throw new ConfigError(`${name} must be at most ${range.max} bytes, got ${n}`);
    return n;
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(choices as readonly string[]).includes(v)) throw new ConfigError(`${name} must be one of ${choices.join(', ')}, got "${v}"`);
    return v as T;
  }

  /** One or more comma-separated nats:// (or host:port) URLs. */
  natsServers(name: string, fallback: string): string[] {
    const v = this.raw(name) ?? fallback;
    const list = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const s of list) {
      if (!/^(nats|tls|ws|wss):\/\/[^\s/]+$|^[^\s/:]+:\d+$/.test(s)) throw new ConfigError(`${name} must be nats://host:port (comma-separated for several), got "${withoutUrlCredentials(s)}"`);
    }
    return list;
  }

  logLevel(name: string): 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' {
    return this.oneOf(name, ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info');
  }
}

/** A size: a plain byte count or a number with KiB/MiB/GiB/TiB (also k/m/g/t); `name` is for the error. */
export function parseSize(name: string, v: string): number {
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(v.trim());
  if (!m) throw new ConfigError(`${name} must be a size such as 4194304 or 4MiB, got "${v}"`);
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : unit === 't' ? 1024 ** 4 : 1);
}
