/**
 * `flurry.data`: named data uploaded once and used by jobs as their parent's init input
 * (`initData` in a job spec), so that a large database is not sent inline with every job.
 */
import type { Transport } from './transport.js';
import type { DataRecord } from './types.js';

/**
 * The data API. Reach it as `flurry.data`.
 *
 * @example
 * await flurry.data.put('nt.fasta.gz', await readFile('nt.fasta.gz'));
 * const hits = await flurry.jobs.run({ function: 'blast', clones: 16, initData: 'nt.fasta.gz', input: queries });
 */
export class DataApi {
  constructor(private readonly transport: Transport) {}

  /** Uploads `bytes` (a string as UTF-8) under `name`, replacing what was there. */
  async put(name: string, bytes: Uint8Array | string): Promise<DataRecord> {
    return this.transport.json<DataRecord>({
      method: 'PUT',
      path: dataPath(name),
      headers: { 'content-type': 'application/octet-stream' },
      body: typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes,
    });
  }

  /** Every upload of the tenant, by name. */
  async list(): Promise<DataRecord[]> {
    return (await this.transport.json<{ data: DataRecord[] }>({ method: 'GET', path: '/v1/data' })).data;
  }

  async get(name: string): Promise<DataRecord> {
    return this.transport.json<DataRecord>({ method: 'GET', path: dataPath(name) });
  }

  async delete(name: string): Promise<void> {
    await this.transport.json<{ deleted: string }>({ method: 'DELETE', path: dataPath(name) });
  }
}

function dataPath(name: string): string {
  return `/v1/data/${encodeURIComponent(name)}`;
}
