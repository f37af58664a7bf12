/**
 * Uploaded job data (docs/api.md, "Job data") as it sits in a tenant's object
 * store: how an object's info reads as a DataRecord, and how a host reads the
 * exact version a job was pinned to.
 */
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import { FlurryError } from './errors.js';
import type { DataRecord, InitDataRef } from './protocol.js';

/** The object store writes `SHA-256=<base64url>`; the API shows `sha256:<hex>`. */
export function dataDigest(info: Pick<ObjectInfo, 'digest'>): string {
  const b64 = info.digest.replace(/^SHA-256=/, '').replace(/-/g, '+').replace(/_/g, '/');
  return `sha256:${Buffer.from(b64, 'base64').toString('hex')}`;
}

export function dataRecord(info: ObjectInfo): DataRecord {
  return { name: info.name, bytes: info.size, digest: dataDigest(info), createdAt: Date.parse(info.mtime) };
}

/**
 * The bytes of an uploaded object, refusing any version but the one `ref`
 * names: a job's parents must all boot from the same input, even when the
 * name was uploaded again meanwhile.
 */
export async function readDataObject(store: ObjectStore, ref: InitDataRef): Promise<Uint8Array> {
  const got = await store.get(ref.name);
  if (!got) throw new FlurryError('not_found', `the data "${ref.name}" was deleted`);
  if (dataDigest(got.info) !== ref.digest) {
    await got.data.cancel().catch(() => undefined);
    throw new FlurryError('conflict', `the data "${ref.name}" was replaced since the job was submitted (${ref.digest}, now ${dataDigest(got.info)})`);
  }
  const out = new Uint8Array(got.info.size);
  let at = 0;
  const reader = got.data.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    if (at + r.value.length > out.length) throw new FlurryError('internal', `the data "${ref.name}" is longer than its ${out.length} bytes`);
    out.set(r.value, at);
    at += r.value.length;
  }
  const err = await got.error;
  if (err) throw new FlurryError('unavailable', `reading the data "${ref.name}" failed: ${err.message}`);
  if (at !== out.length) throw new FlurryError('unavailable', `reading the data "${ref.name}" stopped at ${at} of ${out.length} bytes`);
  return out;
}
