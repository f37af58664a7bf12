// The namespace network on the real kernel: members reach each other over the
// bridge, their counters move, a dead run's namespaces are removed, and stop()
// leaves nothing behind. Needs root and iproute2; skipped with the reason elsewhere.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { netnsUnavailable } from './availability.js';
import { ip, listNamespaces } from './ip.js';
import { NetnsNetwork, removeStaleNamespaces } from './network.js';

const unavailable = await netnsUnavailable();
if (unavailable) console.log(`[netns network] skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('a network of namespaces', () => {
  const made: NetnsNetwork[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((n) => n.stop()));
  });

  it('two members talk TCP over the bridge at their own addresses; their counters count it; stop removes every namespace', async () => {
    const net = await NetnsNetwork.create();
    made.push(net);
    const [a, b] = [await net.addMember('a'), await net.addMember('b')];
    expect(a.address).not.toBe(b.address);
    const before = await net.bytes('b');
    // b listens at its address; a connects from its own and sends 1 MiB.
    const [lcmd, ...largs] = b.wrapCommand([process.execPath, '-e', `require('net').createServer((s) => { let n = 0; s.on('data', (d) => n += d.length); s.on('end', () => { s.end(String(n)); }); }).listen(7000, '${b.address}', () => console.log('up'))`]);
    const listener = spawn(lcmd!, largs, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => listener.stdout!.once('data', r));
      const [ccmd, ...cargs] = a.wrapCommand([process.execPath, '-e', `const s = require('net').connect(7000, '${b.address}', () => s.end(Buffer.alloc(1 << 20))); let out = ''; s.on('data', (d) => out += d); s.on('end', () => console.log(out + ' ' + s.localAddress));`]);
      const client = spawn(ccmd!, cargs, { stdio: ['ignore', 'pipe', 'inherit'] });
      let printed = '';
      client.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
      expect(await new Promise((r) => client.once('exit', r))).toBe(0);
      expect(printed.trim()).toBe(`${1 << 20} ${a.address}`);
    } finally {
      listener.kill('SIGKILL');
    }
    const after = await net.bytes('b');
    expect(after.rxBytes - before.rxBytes).toBeGreaterThan(1 << 20);
    // Nothing was added to this namespace's interfaces.
    expect(await ip(['-o', 'addr'])).not.toContain(a.address);
    await net.stop();
    expect((await listNamespaces()).filter((ns) => ns.startsWith(net.prefix))).toEqual([]);
  });

  it('a dead run\'s namespaces are removed, a live run\'s are kept', async () => {
    // A pid that no longer runs: a child that has exited.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.once('exit', r));
    const stale = `flurry-${gone.pid}-1-host-1`;
    await ip(['netns', 'add', stale]);
    const net = await NetnsNetwork.create();
    made.push(net);
    const names = await listNamespaces();
    expect(names).not.toContain(stale);
    expect(names).toContain(`${net.prefix}-br`);
    expect(await removeStaleNamespaces()).toEqual([]);
    expect(await listNamespaces()).toContain(`${net.prefix}-br`);
  });

  it('refuses a bad member name and a name twice', async () => {
    const net = await NetnsNetwork.create();
    made.push(net);
    await expect(net.addMember('../x')).rejects.toThrow(/a-z, 0-9/);
    await net.addMember('x');
    await expect(net.addMember('x')).rejects.toThrow(/already/);
  });
});
