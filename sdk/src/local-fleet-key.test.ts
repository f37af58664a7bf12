// The CLI's fallback key: the local fleet's admin key, found in FLURRY_DATA_DIR
// or in a `.flurry` folder from the working directory up, and only ever sent
// to a gateway on this machine.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findLocalFleetKey, LOCAL_KEY_FILE } from './local-fleet-key.js';

const root = mkdtempSync(join(tmpdir(), 'flurry-localkey-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('local fleet key', () => {
  mkdirSync(join(root, 'repo', '.flurry'), { recursive: true });
  mkdirSync(join(root, 'repo', 'sdk', 'src'), { recursive: true });
  writeFileSync(join(root, 'repo', '.flurry', LOCAL_KEY_FILE), 'flk_from-repo\n');
  mkdirSync(join(root, 'state'));
  writeFileSync(join(root, 'state', LOCAL_KEY_FILE), 'flk_from-data-dir\n');

  it('local key - found from the working directory up, or in FLURRY_DATA_DIR', () => {
    expect(findLocalFleetKey('http://127.0.0.1:8080', {}, join(root, 'repo', 'sdk', 'src'))).toBe('flk_from-repo');
    expect(findLocalFleetKey('http://localhost:8080', {}, join(root, 'repo'))).toBe('flk_from-repo');
    expect(findLocalFleetKey('http://127.0.0.1:8080', { FLURRY_DATA_DIR: join(root, 'state') }, join(root, 'repo'))).toBe('flk_from-data-dir');
    expect(findLocalFleetKey('http://127.0.0.1:8080', {}, root)).toBeUndefined();
  });

  it('local key - never for a gateway on another machine', () => {
    for (const url of ['https://flurry.example.com', 'http://10.0.0.5:8080', 'http://127.0.0.1.example.com:8080', 'not a url']) {
      expect(findLocalFleetKey(url, {}, join(root, 'repo'))).toBeUndefined();
    }
  });
});
