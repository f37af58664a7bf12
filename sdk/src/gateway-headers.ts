/** Names of the headers the gateway adds to its answers. */
export const GatewayHeaders = {
  /** Present, with the error code, on every platform error; never on a guest's own response. */
  error: 'x-flurry-error',
  requestId: 'x-flurry-request-id',
  /** The host that ran the guest; present on every guest response. */
  host: 'x-flurry-host',
  durationMs: 'x-flurry-duration-ms',
} as const;
