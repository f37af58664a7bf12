/**
 * Deployed functions: modules in the object store (content-addressed by
 * SHA-256), records in the functions bucket. Records are cached from a watch
 * so that an invocation does not read KV. A function's limits
 * (functions/function-limits.ts) belong to the function, not to a module:
 * a redeploy keeps them.
 */
import { createHash } from 'node:crypto';
import {
  Buckets, decodeChecked, decodeOrRefuse, encode, followKv, FlurryError, functionKey, isBrokerFailure, kvKeys, moduleObjectName, NAME_PATTERN, publishTo, Subjects, validateFunctionModule,
  type Fabric, type FleetEvent, type FunctionLimits, type FunctionRecord, type Logger,
} from '@flurry/core';
import { checkLimits, checkModuleMemory, type LimitCaps } from './functions/function-limits.js';

/** Attempts of a record's write that lost a race with another write of it. */
const WRITE_ATTEMPTS = 5;

export class FunctionRegistry {
  private readonly cache = new Map<string, FunctionRecord>();

  constructor(
    private readonly fabric: Fabric,
    /** The fleet's caps: the most memory a module declares, and what a function's limits may reach. */
    private readonly caps: LimitCaps,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await followKv(this.fabric.functions, {}, (e) => {
      const record = e.operation === 'PUT' && e.value.length > 0 ? decodeChecked('FunctionRecord', e.value, e.key) : undefined;
      // A record that is not one is not cached: `get` reads the bucket, and refuses it there.
      if (record) this.cache.set(e.key, record);
      else this.cache.delete(e.key);
    }, this.log, 'functions', () => this.fabric.nc.isClosed(), this.fabric.link);
  }

  static checkName(name: string): void {
    if (!NAME_PATTERN.test(name)) throw new FlurryError('bad_request', `function name "${name}" must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit`);
  }

  /** Validates and stores a module; returns the record and whether it is new. */
  async deploy(tenant: string, name: string, bytes: Uint8Array): Promise<{ record: FunctionRecord; created: boolean }> {
    FunctionRegistry.checkName(name);
    if (bytes.length === 0) throw new FlurryError('invalid_module', 'empty body: send the module bytes');
    let summary;
    try {
      summary = await validateFunctionModule(bytes, this.caps.memoryBytes);
    } catch (err) {
      throw new FlurryError('invalid_module', (err as Error).message);
    }
    // Refused before the module is stored when its memory is over the function's limit (checked again at the write).
    checkModuleMemory(name, summary.memory.maximumPages, (await this.get(tenant, name).catch(() => undefined))?.limits);
    const digest = createHash('sha256').update(bytes).digest('hex');
    const objName = moduleObjectName(tenant, digest);
    if (!(await this.fabric.modules.info(objName))) await this.fabric.modules.putBlob({ name: objName }, bytes);
    const now = Date.now();
    const { record, previous } = await this.rewrite(tenant, name, (previous) => {
      checkModuleMemory(name, summary.memory.maximumPages, previous?.limits);
      return {
        tenant, name, digest, size: bytes.length, exports: summary.exports, memory: summary.memory,
        ...(previous?.limits && { limits: previous.limits }),
        createdAt: previous?.createdAt ?? now, updatedAt: now,
      };
    });
    this.emit({ kind: 'function.deployed', at: now, tenant, name, digest });
    this.log.info({ fn: `${tenant}/${name}`, digest, size: bytes.length }, 'function deployed');
    return { record: record!, created: !previous };
  }

  /**
   * Replaces the function's limits (`{}` clears them: the fleet's defaults
   * again). Refused above the fleet's caps, or when its module declares more
   * memory than the new limit. The record is rewritten only if they differ.
   */
  async setLimits(tenant: string, name: string, limits: FunctionLimits): Promise<{ record: FunctionRecord; changed: boolean }> {
    checkLimits(limits, this.caps);
    FunctionRegistry.checkName(name);
    const { record, previous } = await this.rewrite(tenant, name, (current) => {
      if (!current) throw new FlurryError('not_found', `function "${name}" is not deployed`);
      if (sameLimits(current.limits ?? {}, limits)) return undefined;
      checkModuleMemory(name, current.memory.maximumPages, limits);
      const { limits: _old, ...rest } = current;
      return { ...rest, ...(Object.keys(limits).length > 0 && { limits }), updatedAt: Date.now() };
    });
    if (!record) return { record: previous!, changed: false };
    this.log.info({ fn: `${tenant}/${name}`, limits }, 'function limits set');
    return { record, changed: true };
  }

  /**
   * Writes `next(stored record)` by compare-and-set against the revision read
   * (read again and retried when another write came first), so that a deploy
   * and a limits change at the same moment do not undo each other. `next`
   * answering undefined writes nothing.
   */
  private async rewrite(tenant: string, name: string, next: (current: FunctionRecord | undefined) => FunctionRecord | undefined): Promise<{ record?: FunctionRecord; previous?: FunctionRecord }> {
    const key = functionKey(tenant, name);
    for (let attempt = 1; ; attempt++) {
      const e = await this.fabric.functions.get(key);
      const stored = e !== null && e.operation === 'PUT' && e.value.length > 0;
      // A value that is not a record counts as none: a deploy replaces it.
      const previous = stored ? decodeChecked('FunctionRecord', e.value, key) : undefined;
      const record = next(previous);
      if (!record) return { previous };
      try {
        // None stored (or deleted): create, which fails if another created it meanwhile.
        if (stored) await this.fabric.functions.update(key, encode(record), e.revision);
        else await this.fabric.functions.create(key, encode(record));
      } catch (err) {
        if (isBrokerFailure(err)) throw err;
        if (attempt < WRITE_ATTEMPTS) continue;
        throw new FlurryError('conflict', `function "${name}" was changed by another request meanwhile; try again`, { cause: err });
      }
      this.cache.set(key, record);
      return { record, previous };
    }
  }

  /** The record, from the cache or, just after a deploy through another gateway, from KV. */
  async get(tenant: string, name: string): Promise<FunctionRecord> {
    FunctionRegistry.checkName(name);
    const key = functionKey(tenant, name);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const e = await this.fabric.functions.get(key);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) throw new FlurryError('not_found', `function "${name}" is not deployed`);
    const record = decodeOrRefuse('FunctionRecord', e.value, key, 'internal');
    this.cache.set(key, record);
    return record;
  }

  async list(tenant: string): Promise<FunctionRecord[]> {
    const out: FunctionRecord[] = [];
    for (const k of await kvKeys(this.fabric.jsm, Buckets.functions, `${tenant}.>`)) {
      const e = await this.fabric.functions.get(k);
      const record = e && e.operation === 'PUT' && e.value.length > 0 ? decodeChecked('FunctionRecord', e.value, k) : undefined;
      if (record) out.push(record);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Deletes the record; the module stays in the object store while other functions may share it. */
  async delete(tenant: string, name: string): Promise<void> {
    await this.get(tenant, name);
    await this.fabric.functions.delete(functionKey(tenant, name));
    this.cache.delete(functionKey(tenant, name));
    this.emit({ kind: 'function.deleted', at: Date.now(), tenant, name });
    this.log.info({ fn: `${tenant}/${name}` }, 'function deleted');
  }

  private emit(event: FleetEvent & { tenant: string }): void {
    publishTo(this.fabric.nc, 'event', Subjects.event(event.tenant, event.kind), event);
  }
}

function sameLimits(a: FunctionLimits, b: FunctionLimits): boolean {
  return a.timeoutMs === b.timeoutMs && a.memoryBytes === b.memoryBytes && a.outputBytes === b.outputBytes;
}
