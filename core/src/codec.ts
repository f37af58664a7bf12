/** msgpackr encoding for everything on the wire, with decode limits. */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

/** Encodes a message for NATS. Uint8Arrays stay binary. */
export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes a NATS payload; refuses payloads above `maxBytes` before parsing them. */
export function decode<T>(data: Uint8Array, maxBytes = 64 * 1024 * 1024): T {
  if (data.length > maxBytes) throw new Error(`message of ${data.length} bytes exceeds the decode limit of ${maxBytes}`);
  if (data.length === 0) throw new Error('empty message');
  return packr.unpack(data) as T;
}
