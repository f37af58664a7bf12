// Which gateway and key a command uses: flags and environment, then the context, then the defaults.
import { describe, expect, it } from 'vitest';
import type { CliConfig } from './cli-config-file.js';
import { DEFAULT_URL, resolveConnection, UnknownContextError } from './cli-connection.js';

const config: CliConfig = {
  current: 'prod',
  contexts: { prod: { url: 'https://flurry.example.com', key: 'flk_prod' }, open: { url: 'http://10.0.0.5:8080' } },
};
const noLocalKey = () => undefined;
const localKey = (url: string) => (url.startsWith('http://127.0.0.1') ? 'flk_local' : undefined);

describe('cli connection', () => {
  it('connection - the current context gives URL and key when neither flag nor environment does', () => {
    expect(resolveConnection({ config, localKey: noLocalKey })).toEqual({ url: 'https://flurry.example.com', apiKey: 'flk_prod' });
    expect(resolveConnection({ config, contextName: 'open', localKey: noLocalKey })).toEqual({ url: 'http://10.0.0.5:8080', apiKey: undefined });
  });

  it('connection - a given key wins over the context key; a given URL wins over the context URL', () => {
    expect(resolveConnection({ config, apiKey: 'flk_given', localKey: noLocalKey })).toEqual({ url: 'https://flurry.example.com', apiKey: 'flk_given' });
    expect(resolveConnection({ config, url: 'https://flurry.example.com/', localKey: noLocalKey }).apiKey).toBe('flk_prod');
  });

  it("connection - a context's key never goes to another gateway", () => {
    expect(resolveConnection({ config, url: 'https://evil.example.com', localKey: noLocalKey })).toEqual({ url: 'https://evil.example.com', apiKey: undefined });
    expect(resolveConnection({ config, url: 'http://127.0.0.1:9000', localKey })).toEqual({ url: 'http://127.0.0.1:9000', apiKey: 'flk_local' });
  });

  it('connection - without contexts: the default URL and the local fleet key', () => {
    expect(resolveConnection({ config: { contexts: {} }, localKey })).toEqual({ url: DEFAULT_URL, apiKey: 'flk_local' });
  });

  it('connection - an unknown --context is refused, naming the defined ones', () => {
    expect(() => resolveConnection({ config, contextName: 'staging', localKey })).toThrow(UnknownContextError);
    expect(() => resolveConnection({ config, contextName: 'staging', localKey })).toThrow('--context: no context "staging" (defined: prod, open)');
  });
});
