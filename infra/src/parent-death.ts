/**
 * A fleet's processes end with the process that started them. A test or a
 * benchmark killed outright (SIGKILL, a CI time limit) runs no afterAll and no
 * exit handler, and its nats-servers, gateway and hosts lived on for as long
 * as nobody killed them, holding ports, store folders and memory.
 *
 * The kernel's parent-death signal (prctl PR_SET_PDEATHSIG), set by
 * util-linux's `setpriv` before it execs the command, kills the child when its
 * parent ends. It survives the exec of `ip netns exec` and of the command, so
 * the pid, signals and IPC channel stay the command's own. Without setpriv
 * (not Linux) the command runs as it is.
 *
 *   spawn(...endingWithParent(['nats-server', '-c', conf]))
 */
import { accessSync, constants } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

let setprivUsable: boolean | undefined;

/** `argv`, run so that it is killed when this process ends (however it ends). */
export function endingWithParent(argv: string[]): string[] {
  setprivUsable ??= canRun(SETPRIV);
  return setprivUsable ? [SETPRIV, '--pdeathsig', 'KILL', ...argv] : argv;
}

function canRun(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
