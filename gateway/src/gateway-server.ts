/**
 * The gateway's HTTP server: the call routes (`/fn`, the invoke route and
 * `/svc`) answered first, on Node's own request and response
 * (call-route/call-handler.ts), every other request by the Hono app through
 * node-server's listener, as it arrived; and requests Node's parser refuses
 * answered in the API's error shape (client-errors.ts).
 *
 *   const server = gatewayServer(createApp(deps), callHandler(deps), { hostname: config.host });
 *   server.listen(config.port, config.host);
 */
import { createServer, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { answerClientErrors } from './client-errors.js';
import type { CallHandler } from './call-route/call-handler.js';

/**
 * `hostname`: what a request without a Host header is taken to be for (node-server's `serve` passes its listen
 * address). `overrideGlobalObjects`: node-server's own (default true: its lighter Request and Response become the
 * globals); tests that share their process with other suites pass false.
 */
export function gatewayServer(app: { fetch: (req: Request, env: object) => Response | Promise<Response> }, calls: CallHandler, opts: { hostname?: string; overrideGlobalObjects?: boolean } = {}): Server {
  const toApp = getRequestListener(app.fetch, opts);
  const server = createServer((req, res) => {
    if (!calls(req, res)) void toApp(req, res);
  });
  answerClientErrors(server);
  return server;
}
