// The config file of contexts: where it is, what it may hold, how it is written.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addContext, configPath, readConfig, removeContext, useContext, writeConfig } from './cli-config-file.js';

const scratch = mkdtempSync(join(tmpdir(), 'flurry-config-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('cli config file', () => {
  it('config file - FLURRY_CONFIG, else XDG_CONFIG_HOME (when absolute), else ~/.config', () => {
    expect(configPath({ FLURRY_CONFIG: '/etc/flurry.yaml', XDG_CONFIG_HOME: '/x' })).toBe('/etc/flurry.yaml');
    expect(configPath({ XDG_CONFIG_HOME: '/x', HOME: '/home/ada' })).toBe('/x/flurry/config.yaml');
    expect(configPath({ XDG_CONFIG_HOME: 'relative', HOME: '/home/ada' })).toBe('/home/ada/.config/flurry/config.yaml');
    expect(configPath({ HOME: '/home/ada' })).toBe('/home/ada/.config/flurry/config.yaml');
  });

  it('config file - add, use and rm round-trip through the file, which is 0600 in a 0700 folder it made', () => {
    const path = join(scratch, 'made', 'config.yaml');
    expect(readConfig(path)).toEqual({ contexts: {} });
    let config = addContext(readConfig(path), 'local', { url: 'http://127.0.0.1:8080', key: 'flk_a' });
    config = addContext(config, 'prod', { url: 'https://flurry.example.com' });
    writeConfig(path, useContext(config, 'prod'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(scratch, 'made')).mode & 0o777).toBe(0o700);
    expect(readConfig(path)).toEqual({ current: 'prod', contexts: { local: { url: 'http://127.0.0.1:8080', key: 'flk_a' }, prod: { url: 'https://flurry.example.com' } } });
    writeConfig(path, removeContext(readConfig(path), 'prod'));
    expect(readConfig(path)).toEqual({ contexts: { local: { url: 'http://127.0.0.1:8080', key: 'flk_a' } } });
  });

  it('config file - a file written looser is made 0600 by the next write', () => {
    const path = join(scratch, 'loose.yaml');
    writeFileSync(path, 'contexts: {}\n', { mode: 0o644 });
    writeConfig(path, addContext(readConfig(path), 'a', { url: 'http://a.example' }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toContain('current: a');
  });

  it('config file - refuses unknown fields, bad URLs and keys, a current that names nothing, and what is not YAML', () => {
    const cases: [string, RegExp][] = [
      ['contexts: {}\nextra: 1\n', /unknown field "extra"/],
      ['contexts:\n  a: { url: http://a.example, secret: x }\n', /context "a": unknown field "secret"/],
      ['contexts:\n  a: { url: "javascript:alert(1)" }\n', /context "a": url must be an http or https URL/],
      ['contexts:\n  a: { url: http://a.example, key: "two words" }\n', /key must be a string without spaces/],
      ['current: b\ncontexts:\n  a: { url: http://a.example }\n', /"current" names no defined context: "b"/],
      ['contexts:\n  "../etc": { url: http://a.example }\n', /context name "..\/etc"/],
      ['- a list\n', /expected a mapping/],
      ['contexts: {\n', /is not YAML/],
    ];
    for (const [text, error] of cases) {
      const path = join(scratch, 'bad.yaml');
      writeFileSync(path, text);
      expect(() => readConfig(path), text).toThrow(error);
    }
    expect(() => useContext({ contexts: {} }, 'x')).toThrow('no context "x" (none defined: flurry context add NAME --url URL)');
    expect(() => addContext({ contexts: {} }, 'bad name', { url: 'http://a.example' })).toThrow(/context name "bad name"/);
  });
});
