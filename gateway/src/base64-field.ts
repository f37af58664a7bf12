/** Binary fields of JSON request bodies (job and service inputs) arrive as base64. */
import { z } from '@hono/zod-openapi';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A base64 string (padding optional), as a body schema's field: anything else is refused naming the field. */
export function base64String(description: string) {
  return z.string({ error: 'must be a base64 string' })
    .refine((s) => BASE64.test(s) && s.length % 4 !== 1, { error: 'is not valid base64' })
    .openapi({ format: 'byte', description });
}

/** The bytes of a field its schema checked (`base64String`); an absent one is empty. */
export function base64Bytes(s: string | undefined): Uint8Array {
  return s === undefined ? new Uint8Array(0) : new Uint8Array(Buffer.from(s, 'base64'));
}
