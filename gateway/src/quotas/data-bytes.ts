/**
 * The stored-data quota: the bytes a tenant keeps in its data store
 * (`flurry_data_<tenant>`, /v1/data) are at most `quota`. An upload may take
 * what the store does not hold yet: it is refused at once when its
 * Content-Length does not fit, and cut off when its bytes pass the room
 * left. The store's own max_bytes (the quota plus room for chunk headers)
 * stops uploads that race each other. Replacing an object needs room for
 * both versions until the new one is complete.
 *
 *   const room = dataRoom(quota, await data.usedBytes(tenant));
 */

/** A tenant store's max_bytes: the quota and room for the object store's own chunk and metadata messages; -1 (none) without a quota. */
export function dataStoreMaxBytes(quota: number): number {
  return quota === 0 ? -1 : quota + Math.max(8 * 1024 * 1024, Math.ceil(quota / 64));
}

/** What a tenant may still upload: the quota less what its store holds (never below 0); without a quota (0), no bound. */
export function dataRoom(quota: number, usedBytes: number): number {
  return quota === 0 ? Infinity : Math.max(0, quota - usedBytes);
}
