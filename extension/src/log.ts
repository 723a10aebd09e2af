// One LogOutputChannel for the extension and the language client (its trace goes here too).
// Its level is set with "Developer: Set Log Level…"; the LSP message trace with `tlens.trace.server`.
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

/** The shared "TLens" output channel, created on first use. */
export function logChannel(): vscode.LogOutputChannel {
    channel ??= vscode.window.createOutputChannel('TLens', { log: true });
    return channel;
}

export function logInfo(message: string): void {
    logChannel().info(message);
}

export function logWarn(message: string): void {
    logChannel().warn(message);
}

export function logError(message: string, error?: unknown): void {
    const detail = error instanceof Error ? (error.stack ?? error.message) : error === undefined ? '' : String(error);
    logChannel().error(detail ? `${message}\n${detail}` : message);
}
