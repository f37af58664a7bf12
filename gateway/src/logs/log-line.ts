/** A guest's log line as the API answers it: declared once, for the routes' document and the store's records. */
import { z } from '@hono/zod-openapi';

export const GuestLogLine = z.strictObject({
  at: z.number().openapi({ description: 'When the run that logged it ended (ms since the Unix epoch)' }),
  level: z.enum(['debug', 'info', 'warn', 'error']),
  message: z.string(),
  requestId: z.string().openapi({ description: 'The call\'s request id, or the clone\'s fork request' }),
  hostId: z.string(),
  function: z.string().optional().openapi({ description: 'A function call\'s function' }),
  jobId: z.string().optional(),
  clone: z.union([z.number().int(), z.literal('reduce')]).optional().openapi({ description: 'A job\'s clone index, or `reduce`' }),
  service: z.string().optional(),
  instanceId: z.string().optional(),
  dropped: z.number().int().optional().openapi({ description: 'Only on the platform\'s note that ends a run whose lines went over the per-call limit: how many were not kept' }),
}).openapi('GuestLogLine', { description: 'One line a guest logged, with what ran' });

export type GuestLogRecord = z.infer<typeof GuestLogLine>;
