/**
 * What a guest thread needs to read and answer calls on its own connection
 * (`@flurry/core/call-wire`): the frames, the hand check of a call and the
 * codec — and nothing of NATS, zod or pino, which would cost every guest
 * thread a second of a core to load. A call that the hand check does not
 * certainly accept is declined by the thread: the gateway sends it through
 * the broker, whose host checks it against the schema and says why it is
 * malformed.
 */
export { answerCallConnection, CALL_FRAME_OVERHEAD, encodeFrame, FrameReader, FrameType, splitCallPayload, type Frame } from './call-frames.js';
export { CallChecks } from './call-checks.js';
export { decode, encode } from './codec.js';
