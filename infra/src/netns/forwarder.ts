#!/usr/bin/env node
/**
 * The forwarder process of the namespace launcher's entry (entry.ts): started
 * inside a member namespace, it listens on Unix socket paths its parent asks
 * for over the IPC channel and connects each accepted stream to a TCP address
 * of that network. Filesystem sockets are visible from every network
 * namespace, so the parent, in the machine's own namespace, reaches the
 * network through them. It exits when its parent goes (the channel closes).
 *
 *   parent -> { kind: 'forward', socket: '/tmp/x/gw.sock', host: '10.77.0.3', port: 8080 }
 *   parent <- { kind: 'forwarding', socket } | { kind: 'refused', socket, message }
 */
import { rmSync } from 'node:fs';
import { connect, createServer, isIPv4, type Socket } from 'node:net';

interface ForwardRequest { kind: 'forward'; socket: string; host: string; port: number }

function isForwardRequest(m: unknown): m is ForwardRequest {
  const r = m as Partial<ForwardRequest> | null;
  return typeof r === 'object' && r !== null && r.kind === 'forward' && typeof r.socket === 'string' && r.socket.startsWith('/')
    && typeof r.host === 'string' && isIPv4(r.host) && Number.isInteger(r.port) && r.port! > 0 && r.port! < 65536;
}

/** Both directions piped; either side's end or error closes both. */
function splice(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => { a.destroy(); b.destroy(); };
  a.once('error', close).once('close', close);
  b.once('error', close).once('close', close);
}

function forward(req: ForwardRequest): void {
  rmSync(req.socket, { force: true });
  const server = createServer((client) => splice(client, connect({ host: req.host, port: req.port })));
  server.once('error', (err) => process.send?.({ kind: 'refused', socket: req.socket, message: err.message }));
  server.listen(req.socket, () => process.send?.({ kind: 'forwarding', socket: req.socket }));
}

if (!process.send) {
  console.error('forwarder: start it with an IPC channel (infra/src/netns/entry.ts does)');
  process.exit(2);
}
process.on('message', (m: unknown) => {
  if (isForwardRequest(m)) forward(m);
  else process.send?.({ kind: 'refused', socket: String((m as { socket?: unknown } | null)?.socket ?? ''), message: `not a forward request: ${JSON.stringify(m)}` });
});
process.on('disconnect', () => process.exit(0));
process.send({ kind: 'ready' });
