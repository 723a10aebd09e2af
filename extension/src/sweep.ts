// Client side of patch sweeps: make sure a kernel is there, then let the server run the sweep.
// The server reports progress with LSP work-done progress (languageclient shows it, with Cancel)
// and the result with `tlens/sweepResult`.
import * as vscode from 'vscode';
import type { ExecuteCommandSignature } from 'vscode-languageclient/node';
import { KernelCommands, KernelStatusBar } from './kernel';
import { logInfo } from './log';
import { RunSweepArgs, ServerCommand, SWEEP_KINDS } from './protocol';
import { refusedInRestrictedMode } from './restrictedMode';
import type { ServerManager } from './server';
import { readSettings } from './settings';
import { runsCode } from './trust';

export class SweepCommands {
    constructor(
        private readonly server: ServerManager,
        private readonly kernel: KernelCommands,
        private readonly status: KernelStatusBar,
    ) {}

    /** languageclient middleware: a "Run patch sweep" code action starts a kernel first if none is attached; in
     * Restricted Mode, code lenses and links that would run code say why they do not. */
    readonly executeCommandMiddleware = async (command: string, args: unknown[], next: ExecuteCommandSignature) => {
        if (runsCode(command) && refusedInRestrictedMode(command === ServerCommand.runSweep ? 'Running a patch sweep' : command)) {
            return undefined;
        }
        if (command === ServerCommand.runSweep && !(await this.ensureKernel())) {
            return undefined;
        }
        return next(command, args);
    };

    /** Palette command: sweep at the cursor, kind picked (the default kind first). */
    async runAtCursor(): Promise<void> {
        const editor = vscode.window.activeTextEditor;
        if (!editor || editor.document.languageId !== 'python') {
            void vscode.window.showWarningMessage('TLens: put the cursor on a patching line in a Python file, then run the sweep.');
            return;
        }
        const kind = await this.pickKind();
        if (!kind) return;
        const args: RunSweepArgs = { uri: editor.document.uri.toString(), line: editor.selection.active.line, kind };
        if (!(await this.ensureKernel())) return;
        try {
            await this.server.executeServerCommand(ServerCommand.runSweep, args);
        } catch (err) {
            void vscode.window.showErrorMessage(`TLens: the sweep failed: ${err instanceof Error ? err.message : String(err)}`);
        }
    }

    private async pickKind(): Promise<string | undefined> {
        const defaultKind = readSettings().sweep.defaultKind;
        const kinds = [defaultKind, ...SWEEP_KINDS.filter((k) => k !== defaultKind)];
        const pick = await vscode.window.showQuickPick(
            kinds.map((k) => ({ label: k, description: k === defaultKind ? 'default (tlens.sweep.defaultKind)' : undefined })),
            { title: 'TLens: kind of patch sweep' },
        );
        return pick?.label;
    }

    /** Starts a kernel when none is usable. Returns false when there still is none. */
    private async ensureKernel(): Promise<boolean> {
        const state = this.status.status.state;
        if (state !== 'none' && state !== 'dead') {
            return true;
        }
        logInfo(`No usable kernel (${state}); starting one for the sweep.`);
        return vscode.window.withProgress(
            { location: vscode.ProgressLocation.Notification, title: 'TLens: starting a kernel for the sweep…' },
            () => this.kernel.start(),
        );
    }
}
