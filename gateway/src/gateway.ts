/** Wires the gateway together: fabric, registry, fleet view, placement, invoker, HTTP server. */
import { serve, type ServerType } from '@hono/node-server';
import { connectFabric, type Fabric, type Logger } from '@flurry/core';
import { createApp } from './app.js';
import type { GatewayConfig } from './config.js';
import { FleetView } from './fleet-view.js';
import { FunctionRegistry } from './function-registry.js';
import { Invoker } from './invoker.js';
import { Placement } from './placement.js';

export class Gateway {
  private constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly server: ServerType,
    readonly port: number,
  ) {}

  static async start(config: GatewayConfig, log: Logger): Promise<Gateway> {
    const fabric = await connectFabric({ servers: config.natsServers, name: 'flurry-gateway', hostTtlSeconds: config.hostTtlSeconds });
    const fleet = new FleetView(fabric, config.hostTtlSeconds * 1000, log);
    const registry = new FunctionRegistry(fabric, config.maxGuestMemoryBytes, log);
    await Promise.all([fleet.start(), registry.start()]);
    const placement = new Placement(fabric, fleet, config.placeTimeoutMs, log);
    const invoker = new Invoker(fabric, fleet, placement, config.invokeTimeoutMs, log);
    const app = createApp({ registry, invoker, fleet, log, maxBodyBytes: config.maxBodyBytes, maxModuleBytes: config.maxModuleBytes, apiKeys: config.apiKeys });
    const { server, port } = await new Promise<{ server: ServerType; port: number }>((resolve, reject) => {
      const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => resolve({ server, port: info.port }));
      server.once('error', reject);
    });
    return new Gateway(fabric, fleet, server, port);
  }

  async stop(): Promise<void> {
    this.fleet.stop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.fabric.close();
  }
}
