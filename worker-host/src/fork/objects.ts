/** The object stores a fork reads and writes (uploaded init data, jobs' clone inputs and outputs), each opened once. */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { FlurryError, JobOutputObjects, isStorageFull, openExistingObjects, readDataObject, untilStored, type BrokerLink, type InitDataRef, type Logger } from '@flurry/core';

export class ForkObjects {
  private readonly stores = new Map<string, Promise<ObjectStore>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly link: BrokerLink,
    private readonly log: Logger,
  ) {}

  /** A parent's init input: inline, or an uploaded data object read from its store (docs/api.md, "Job data"). */
  async initInput(inline: Uint8Array | undefined, ref: InitDataRef | undefined): Promise<Uint8Array> {
    if (!ref) return inline ?? new Uint8Array(0);
    const t0 = performance.now();
    const bytes = await readDataObject(await this.store(ref.store), ref);
    this.log.debug({ data: ref.name, bytes: bytes.length, ms: performance.now() - t0 }, 'init data fetched');
    return bytes;
  }

  /** A clone's input that its job stored as an object. */
  async cloneInput(store: string, name: string): Promise<Uint8Array> {
    const bytes = await (await this.store(store)).getBlob(name);
    if (!bytes) throw new FlurryError('not_found', `the input object ${name} is missing`);
    return bytes;
  }

  /**
   * Stores a clone's output as an object of its job, retried while the broker
   * is away; a full store stays full, so it fails at once with storage_full
   * instead of retrying for minutes.
   */
  async putOutput(name: string, output: Uint8Array, stopped: () => boolean): Promise<void> {
    await untilStored(this.link, async () => (await this.store(JobOutputObjects)).putBlob({ name }, output), { stopped, permanent: isStorageFull });
  }

  private store(name: string): Promise<ObjectStore> {
    let p = this.stores.get(name);
    if (!p) {
      p = openExistingObjects(this.nc, name);
      p.catch(() => this.stores.delete(name));
      this.stores.set(name, p);
    }
    return p;
  }
}
