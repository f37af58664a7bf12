/** Which nats-server node a fleet process is connected to, from its log (core/src/broker-link.ts logs each connection at info level). */

/** The node named by the last `broker connected` / `broker reachable again` line, if any. */
export function brokerNodeOf(lines: string[]): string | undefined {
  for (const line of [...lines].reverse()) {
    const m = /"server":"([^"]+)".*"msg":"broker (?:connected|reachable again)"/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}
