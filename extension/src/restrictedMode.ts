// What the user sees of Restricted Mode: a refused command says why, with a button that opens the
// Workspace Trust editor (the logic is in trust.ts).
import * as vscode from 'vscode';
import { logInfo } from './log';
import { MANAGE_TRUST_COMMAND, MANAGE_TRUST_LABEL, restrictedMessage } from './trust';

/** True (after telling the user) when the workspace is untrusted and `what` must not run. */
export function refusedInRestrictedMode(what: string): boolean {
    if (vscode.workspace.isTrusted) {
        return false;
    }
    const message = restrictedMessage(what);
    logInfo(message);
    void vscode.window.showWarningMessage(message, MANAGE_TRUST_LABEL).then((choice) => {
        if (choice === MANAGE_TRUST_LABEL) void vscode.commands.executeCommand(MANAGE_TRUST_COMMAND);
    });
    return true;
}

/** Wraps a palette command so that it is refused in Restricted Mode. */
export function unlessRestricted(what: string, run: () => unknown): () => unknown {
    return () => (refusedInRestrictedMode(what) ? undefined : run());
}
