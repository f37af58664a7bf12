// Log lines, tagged by the host with the call's id. The host keeps at most
// 64 lines and 64 KiB per call and counts the rest.

import { log } from "./abi";

export const enum LogLevel {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}

/** Logs `message` at `level`. */
export function logAt(level: LogLevel, message: string): void {
  let buf = String.UTF8.encode(message, false, String.UTF8.ErrorMode.REPLACE);
  log(<i32>level, changetype<usize>(buf), buf.byteLength);
}

export function logDebug(message: string): void {
  logAt(LogLevel.Debug, message);
}

export function logInfo(message: string): void {
  logAt(LogLevel.Info, message);
}

export function logWarn(message: string): void {
  logAt(LogLevel.Warn, message);
}

export function logError(message: string): void {
  logAt(LogLevel.Error, message);
}
