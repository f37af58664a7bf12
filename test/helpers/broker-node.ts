/**
 * The nats cluster as tests see it: which node a fleet process is connected
 * to, from its log (core/src/broker-link.ts logs each connection at info
 * level), and every stream with its leader and replicas.
 */
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';

/** The node named by the last `broker connected` / `broker reachable again` line, if any. */
export function brokerNodeOf(lines: string[]): string | undefined {
  for (const line of [...lines].reverse()) {
    const m = /"server":"([^"]+)".*"msg":"broker (?:connected|reachable again)"/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** Every stream of the account, with its cluster info (leader, replicas). */
export async function listStreams(jsm: JetStreamManager): Promise<StreamInfo[]> {
  const all: StreamInfo[] = [];
  for await (const si of jsm.streams.list()) all.push(si);
  return all;
}
