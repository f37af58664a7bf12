/**
 * The SHA-256 of a snapshot's memory, which a migration's source and target
 * compare before round 0 sends only the pages that differ from the parent:
 * the target's copy of the parent must hold the same bytes as the source's
 * (a parent booted on each host from the same module and init input does,
 * unless its init reads the clock or randomness). Read in slices that yield
 * to the event loop, on the main thread (never in a guest thread, which
 * serves requests), once per snapshot: snapshots are frozen.
 */
import { createHash } from 'node:crypto';
import type { SnapshotImage } from '../guest/snapshot-image.js';

/** Bytes hashed between two turns of the event loop. */
const SLICE_BYTES = 4 * 1024 * 1024;
/**
 * After each slice the hashing rests as long as the slice took: half a core at most, so that a large parent's
 * digest (about 0.3 s of CPU per 256 MiB here) does not starve the requests the host serves meanwhile.
 */
const REST_RATIO = 1;

/**
 * By what identifies one snapshot for its life: its bytes (portable pager) or its zero-page bitmap (a memfd
 * snapshot's, made once with it); a key released and warmed again has new ones.
 */
const digests = new WeakMap<object, Promise<string>>();

/** The digest of a snapshot, computed once (a later call for the same snapshot gets the same promise). */
export function snapshotDigest(image: SnapshotImage): Promise<string> {
  const identity = image.bytes ?? image.zeroPages;
  let digest = digests.get(identity);
  if (!digest) {
    digest = hashImage(image);
    digests.set(identity, digest);
    // A failed read (the snapshot released meanwhile) is not remembered.
    digest.catch(() => digests.delete(identity));
  }
  return digest;
}

async function hashImage(image: SnapshotImage): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < image.byteLength; offset += SLICE_BYTES) {
    const started = performance.now();
    hash.update(image.read(offset, Math.min(SLICE_BYTES, image.byteLength - offset)));
    await new Promise((resolve) => setTimeout(resolve, (performance.now() - started) * REST_RATIO));
  }
  return hash.digest('hex');
}
