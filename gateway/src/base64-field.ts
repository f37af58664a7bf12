/** Binary fields of JSON request bodies (job and service inputs) arrive as base64. */
import { FlurryError } from '@flurry/core';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of a base64 field, or 400 naming the field. */
export function base64Field(field: string, s: string): Uint8Array {
  if (!BASE64.test(s) || s.length % 4 === 1) throw new FlurryError('bad_request', `"${field}" is not valid base64`);
  return new Uint8Array(Buffer.from(s, 'base64'));
}
