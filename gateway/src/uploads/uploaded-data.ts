/**
 * A tenant's uploaded data (docs/api.md, "Job data"): named objects in one
 * JetStream object store per tenant (`flurry_data_<tenant>`), written as the
 * request body streams in, never held whole in the gateway. A job's or a
 * service's `initData` names one; the host that boots the parent reads it
 * from the store itself.
 */
import type { ObjectStore } from '@nats-io/obj';
import {
  DATA_NAME_PATTERN, dataRecord, dataStoreName, FlurryError, openExistingObjects, openTenantData,
  type DataRecord, type Fabric, type InitDataRef,
} from '@flurry/core';
import { dataStoreMaxBytes } from '../quotas/data-bytes.js';

/** Chunks of 1 MiB: a 1 GiB upload is 1024 acknowledged publishes, well under NATS's max_payload each. */
const CHUNK_BYTES = 1024 * 1024;

export class UploadedData {
  private readonly stores = new Map<string, Promise<ObjectStore>>();

  constructor(
    private readonly fabric: Fabric,
    /** Bytes a tenant may keep (FLURRY_QUOTA_DATA_BYTES; 0: no limit): its store's max_bytes follows from it. */
    readonly quotaBytes: number,
  ) {}

  static checkName(name: string): void {
    if (!DATA_NAME_PATTERN.test(name)) {
      throw new FlurryError('bad_request', `data name "${name}" must be 1-128 letters, digits, dots, dashes and underscores, starting with a letter or digit`);
    }
  }

  /** The tenant's store, made on its first upload (and given the quota's byte limit once per gateway). */
  private writable(tenant: string): Promise<ObjectStore> {
    let p = this.stores.get(tenant);
    if (!p) {
      p = openTenantData(this.fabric, tenant, dataStoreMaxBytes(this.quotaBytes));
      p.catch(() => this.stores.delete(tenant));
      this.stores.set(tenant, p);
    }
    return p;
  }

  /** The tenant's store, or undefined when it never uploaded anything. */
  private async readable(tenant: string): Promise<ObjectStore | undefined> {
    const made = this.stores.get(tenant);
    if (made) return made;
    try {
      return await openExistingObjects(this.fabric.nc, dataStoreName(tenant));
    } catch {
      return undefined;
    }
  }

  /**
   * Stores `body` under `name`. The object becomes visible only once every
   * byte is in: a body that fails midway (over the size limit, a dropped
   * connection) leaves the previous version, if any, and no chunks behind.
   */
  async put(tenant: string, name: string, body: ReadableStream<Uint8Array>): Promise<DataRecord> {
    UploadedData.checkName(name);
    const store = await this.writable(tenant);
    const info = await store.put({ name, options: { max_chunk_size: CHUNK_BYTES } }, body);
    return dataRecord(info);
  }

  /** Bytes the tenant's store holds now (its objects with their chunk headers); 0 before its first upload. */
  async usedBytes(tenant: string): Promise<number> {
    try {
      return (await this.fabric.jsm.streams.info(`OBJ_${dataStoreName(tenant)}`)).state.bytes;
    } catch (err) {
      if (/stream not found/i.test((err as Error).message)) return 0;
      throw err;
    }
  }

  async list(tenant: string): Promise<DataRecord[]> {
    const store = await this.readable(tenant);
    if (!store) return [];
    const infos = await store.list();
    return infos.filter((i) => !i.deleted).map(dataRecord).sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(tenant: string, name: string): Promise<DataRecord> {
    UploadedData.checkName(name);
    const info = await (await this.readable(tenant))?.info(name);
    if (!info || info.deleted) throw new FlurryError('not_found', `no data "${name}" (upload it with PUT /v1/data/${name})`);
    return dataRecord(info);
  }

  async delete(tenant: string, name: string): Promise<void> {
    await this.get(tenant, name);
    await (await this.readable(tenant))!.delete(name);
  }

  /** What a job's spec keeps of its init data: the version uploaded now, by digest. */
  async ref(tenant: string, name: string): Promise<InitDataRef> {
    const r = await this.get(tenant, name);
    return { store: dataStoreName(tenant), name: r.name, digest: r.digest, bytes: r.bytes };
  }
}
