/** Wires the gateway together: fabric, registry, fleet view, placement, invoker, HTTP server. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectFabric, logBrokerLink, logRejectedMessagesTo, MetricsListener, type BrokerLink, type Fabric, type Logger } from '@flurry/core';
import { createApp, type AppDeps } from './app.js';
import { GuestLogStore } from './logs/guest-log-store.js';
import { callHandler } from './call-route/call-handler.js';
import { gatewayServer } from './gateway-server.js';
import type { GatewayConfig } from './config.js';
import { FleetView } from './fleet-view.js';
import { FunctionRegistry } from './function-registry.js';
import { Invoker } from './invoker.js';
import { CallChannels } from './functions/call-channels.js';
import { Placement } from './placement.js';
import { JobCoordinator } from './jobs/coordinator.js';
import { JobStore } from './jobs/job-store.js';
import { UploadedData } from './uploads/uploaded-data.js';
import { openServices } from './services/services.js';
import { ServicesController } from './services/controller.js';
import { Journal } from './hosts/journal.js';
import { HostControl } from './hosts/host-control.js';
import { LoadReporter } from './services/load-reporter.js';
import { CallbackDeliverer } from './callbacks/callback-deliverer.js';
import { ConcurrentCalls } from './quotas/concurrent-calls.js';
import { RequestRate } from './quotas/request-rate.js';
import { RunningJobs } from './quotas/running-jobs.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';

export class Gateway {
  private constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly server: Server,
    readonly port: number,
    readonly coordinator: JobCoordinator,
    readonly controller: ServicesController,
    private readonly loadReporter: LoadReporter,
    private readonly runningJobs: RunningJobs,
    /** Where /metrics is served (FLURRY_METRICS_PORT); none when it is not. */
    readonly metrics: MetricsListener | undefined,
    private readonly channels: CallChannels | undefined,
  ) {}

  static async start(config: GatewayConfig, log: Logger): Promise<Gateway> {
    const fabric = await connectFabric({ servers: config.natsServers, name: 'flurry-gateway', hostTtlSeconds: config.hostTtlSeconds, maxOutageMs: config.natsMaxOutageMs, storeLimits: config.storeLimits, replicas: config.jsReplicas, log, auth: config.natsAuth });
    logBrokerLink(fabric.link, log);
    logRejectedMessagesTo(log);
    const fleet = new FleetView(fabric, config.hostTtlSeconds * 1000, log);
    const registry = new FunctionRegistry(fabric, { timeoutMs: config.invokeTimeoutMs, memoryBytes: config.maxGuestMemoryBytes, outputBytes: config.maxOutputBytes }, log);
    await Promise.all([fleet.start(), registry.start()]);
    const placement = new Placement(fabric, fleet, config.placeTimeoutMs, log);
    const metrics = new GatewayMetrics(fabric.link);
    const channels = config.callChannels ? new CallChannels(fabric, fleet, log) : undefined;
    const invoker = new Invoker(fabric, fleet, placement, config.invokeTimeoutMs, log, metrics, channels);
    const jobs = await JobStore.open(fabric, config.jobLeaseTtlMs);
    const runningJobs = new RunningJobs(jobs.jobs, fabric, config.quotas, log);
    // Counting from now, so that the count is complete by the first job submitted.
    await runningJobs.start();
    const coordinator = new JobCoordinator(jobs, fleet, log, {
      leaseTtlMs: config.jobLeaseTtlMs,
      snapshotTimeoutMs: config.placeTimeoutMs,
      callbacks: new CallbackDeliverer(jobs, config.callbacks, log),
      getFunction: (tenant, name) => registry.get(tenant, name),
      metrics,
    });
    let loadReporter: LoadReporter | undefined;
    const services = await openServices({
      fabric, fleet, log, getFunction: (tenant, name) => registry.get(tenant, name),
      invokeTimeoutMs: config.invokeTimeoutMs, createTimeoutMs: config.placeTimeoutMs, instanceLostMs: config.instanceLostMs,
      onLoadChange: () => loadReporter?.changed(),
      instanceQuota: config.quotas.serviceInstances,
      metrics,
    });
    loadReporter = new LoadReporter(fabric.nc, () => services.counts.load());
    const journal = await Journal.open(fabric);
    const controller = await ServicesController.open(fabric, services, fleet, journal, log, {
      leaseTtlMs: config.controllerLeaseTtlMs, scaleInCooldownMs: config.scaleInCooldownMs, consolidateMs: config.consolidateMs, hostInstances: config.hostInstances,
    });
    const data = new UploadedData(fabric, config.quotas.dataBytes);
    const deps: AppDeps = {
      link: fabric.link, registry, invoker, fleet, log, maxBodyBytes: config.maxBodyBytes, maxModuleBytes: config.maxModuleBytes, auth: config.auth,
      jobs, data, maxDataBytes: config.maxDataBytes, services, hostControl: new HostControl(fabric, fleet, journal),
      callbacks: config.callbacks, guestLogs: await GuestLogStore.open(fabric),
      limits: { rate: new RequestRate(config.quotas.requestsPerSecond, config.quotas.requestBurst), calls: new ConcurrentCalls(config.quotas.concurrentCalls), runningJobs },
    };
    const server = gatewayServer(createApp(deps), callHandler({ ...deps, defaultHost: config.host }), { hostname: config.host });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve((server.address() as AddressInfo).port));
    });
    const metricsListener = config.metrics && (await MetricsListener.start(metrics.registry, config.metrics, log));
    coordinator.start();
    controller.start();
    return new Gateway(fabric, fleet, server, port, coordinator, controller, loadReporter, runningJobs, metricsListener, channels);
  }

  /** Whether the broker is reachable (main.ts exits when it has been away too long). */
  get link(): BrokerLink {
    return this.fabric.link;
  }

  async stop(): Promise<void> {
    this.loadReporter.stop();
    this.runningJobs.stop();
    await Promise.all([this.coordinator.stop(), this.controller.stop()]);
    this.fleet.stop();
    this.channels?.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.metrics?.close();
    await this.fabric.close();
  }
}
