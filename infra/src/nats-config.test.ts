import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { natsClusterConfigs, natsServerConfig, natsUrls, type NatsNodeAddress } from './nats-config.js';
import { FleetCredentials } from './nats-permissions.js';
import { findNatsServer } from './nats-server.js';

const dir = mkdtempSync(join(tmpdir(), 'flurry-nats-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** nats-server's own check of a configuration file (`-t`): throws with its message when it refuses the file. */
function serverAccepts(name: string, text: string): void {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, text);
  const bin = findNatsServer();
  expect(bin, 'nats-server must be installed').toBeDefined();
  execFileSync(bin!, ['-t', '-c', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const nodes: NatsNodeAddress[] = [1, 2, 3].map((i) => ({ name: `nats-${i}`, host: `10.0.0.${i}`, clientPort: 4222, clusterPort: 6222 }));
const routeAuth = { user: 'route', password: 'p@ss word/with:specials' };

describe('nats-server configuration', () => {
  it('a single node with the fleet\'s users - nats-server accepts it', () => {
    const text = natsServerConfig({ node: { name: 'solo', host: '127.0.0.1', clientPort: 4333 }, storeDir: join(dir, 'solo'), authorization: FleetCredentials.generate(['host-1']).authorizationConfig() });
    serverAccepts('solo', text);
    expect(text).toContain('server_name: "solo"');
    expect(text).not.toContain('cluster {');
    expect(text).not.toContain('http:');
  });

  it('a node with a monitoring port - nats-server accepts it; it serves /varz on the node\'s address', () => {
    const text = natsServerConfig({ node: { name: 'watched', host: '127.0.0.1', clientPort: 4334 }, storeDir: join(dir, 'watched'), monitorPort: 8333 });
    serverAccepts('watched', text);
    expect(text).toContain('http: 127.0.0.1:8333');
  });

  it('each node of a 3-node cluster - nats-server accepts it; it names itself, routes to the two others (not itself) and runs JetStream', () => {
    const configs = natsClusterConfigs({ nodes, clusterName: 'flurry', routeAuth, storeDirOf: (n) => join(dir, n.name), authorization: FleetCredentials.generate(['host-1']).authorizationConfig() });
    expect([...configs.keys()]).toEqual(['nats-1', 'nats-2', 'nats-3']);
    for (const [name, text] of configs) {
      serverAccepts(name, text);
      expect(text).toContain(`server_name: "${name}"`);
      expect(text).toMatch(/jetstream \{/);
      const routes = [...text.matchAll(/nats-route:\/\/[^"]+@([\d.]+):6222/g)].map((m) => m[1]);
      expect(routes.sort()).toEqual(nodes.filter((n) => n.name !== name).map((n) => n.host).sort());
      // The route password is URL-encoded in the routes, and given as is to the route listener.
      expect(text).toContain(encodeURIComponent(routeAuth.password));
      expect(text).toContain(JSON.stringify(routeAuth.password));
    }
  });

  it('a cluster node without a cluster port is refused; the URL list names every node', () => {
    expect(() => natsServerConfig({ node: { name: 'x', host: '127.0.0.1', clientPort: 1 }, storeDir: dir, cluster: { name: 'f', peers: [], routeAuth } })).toThrow(/cluster port/);
    expect(natsUrls(nodes)).toBe('nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222');
  });
});
