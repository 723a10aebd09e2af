// Workspace trust (VS Code's Restricted Mode): in a workspace the user has not trusted, TLens does static
// analysis only. The server is told in `initializationOptions` (WORKSPACE_TRUSTED) and restarted when trust is
// granted; the commands that would run code are refused here first, with the way out. No runtime import of
// `vscode`, so unit tests run it under plain Node (restrictedMode.ts shows the messages).
import * as path from 'path';
import { RUNS_CODE } from './protocol';

/** VS Code's own command that opens the Workspace Trust editor. */
export const MANAGE_TRUST_COMMAND = 'workbench.trust.manage';
export const MANAGE_TRUST_LABEL = 'Manage Workspace Trust';

/** Why `what` (e.g. "Starting a kernel") does not happen, and how to allow it. */
export function restrictedMessage(what: string): string {
    return (
        `TLens: ${what} is unavailable in Restricted Mode: this workspace is not trusted, so TLens runs no code ` +
        `for it (no kernel, sweep, setup code or interpreter from the workspace); hovers and diagnostics still ` +
        `work. To allow it, trust the workspace ("${MANAGE_TRUST_LABEL}").`
    );
}

/** Whether the server command runs code (and so is refused in Restricted Mode). */
export function runsCode(command: string): boolean {
    return RUNS_CODE.includes(command);
}

/**
 * Whether the interpreter `command` lies inside one of the workspace `folders`: then it is the workspace's
 * own program (a checked-in `.venv/bin/python` can be any script), which Restricted Mode does not run.
 * A bare name (`python3`) is looked up on PATH; a relative path is relative to the first folder.
 */
export function insideFolders(command: string, folders: readonly string[]): boolean {
    if (!command.includes('/') && !command.includes('\\')) {
        return false;
    }
    const file = path.resolve(folders[0] ?? '/', command);
    return folders.some((folder) => {
        const rel = path.relative(path.resolve(folder), file);
        return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
    });
}
