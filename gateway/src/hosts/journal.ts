/**
 * The controller's record of the instances it moved and why (consolidation
 * and drains), newest last, kept in the `moves` entry of the
 * `flurry_controller` KV bucket so that any gateway can show it
 * (`GET /v1/consolidation`) and it survives a change of controller.
 */
import type { KV } from '@nats-io/kv';
import { decodeOrRefuse, encode, openKv, type ControllerMove, type Fabric } from '@flurry/core';

const KEY = 'moves';
/** Moves kept (older ones are dropped). */
export const JOURNAL_LENGTH = 200;

export class Journal {
  private constructor(private readonly kv: KV) {}

  static async open(fabric: Fabric): Promise<Journal> {
    return new Journal(await openKv(fabric, 'controllerJournal'));
  }

  async list(): Promise<ControllerMove[]> {
    const e = await this.kv.get(KEY);
    return e && e.operation === 'PUT' && e.value.length > 0 ? decodeOrRefuse('ControllerMoves', e.value, KEY, 'internal') : [];
  }

  /** Appends (only the controller writes, one move at a time). */
  async add(move: ControllerMove): Promise<void> {
    const moves = [...(await this.list()), move].slice(-JOURNAL_LENGTH);
    await this.kv.put(KEY, encode(moves));
  }
}
