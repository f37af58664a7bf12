/** Short random ids for requests, hosts and jobs: sortable by time, safe in NATS subjects. */
import { randomBytes } from 'node:crypto';

export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}
