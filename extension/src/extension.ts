// Entry point: builds the parts and wires VS Code events to them. Logic lives in the other modules.
import * as vscode from 'vscode';
import { HeatmapPanel } from './heatmap';
import { KernelCommands, KernelStatusBar } from './kernel';
import { logError, logInfo } from './log';
import { ClientCommand, KernelStatus, ServerCommand } from './protocol';
import { onActiveEnvironmentChanged } from './python';
import { unlessRestricted } from './restrictedMode';
import { ServerManager } from './server';
import { affectsInterpreter, affectsServerSettings, readSettings } from './settings';
import { SweepCommands } from './sweep';

let server: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    const status = new KernelStatusBar();
    let sweeps: SweepCommands | undefined;
    const manager: ServerManager = new ServerManager({
        onKernelStatus: (s) => status.setKernelStatus(s),
        onSweepResult: (r) => heatmap.show(r),
        onServerState: (state) => {
            status.setServerState(state);
            if (state === 'running') void refreshKernelStatus(manager, status);
        },
        executeCommand: (command, args, next) => sweeps!.executeCommandMiddleware(command, args, next),
        safeDirectory: context.globalStorageUri.fsPath,
    });
    server = manager;
    // Declared after the manager its callbacks use (they run once the server is up).
    const heatmap = new HeatmapPanel(context.extensionUri, (command, args) => manager.executeServerCommand(command, args));
    const kernel = new KernelCommands(manager);
    sweeps = new SweepCommands(manager, kernel, status);

    context.subscriptions.push(
        status,
        heatmap,
        { dispose: () => void manager.dispose() },
        vscode.commands.registerCommand(ClientCommand.attachKernel, unlessRestricted('Attaching a Jupyter kernel', () => kernel.attach())),
        vscode.commands.registerCommand(ClientCommand.startKernel, unlessRestricted('Starting a kernel', () => kernel.start())),
        vscode.commands.registerCommand(ClientCommand.interruptKernel, unlessRestricted('Interrupting the kernel', () => kernel.interrupt())),
        vscode.commands.registerCommand(ClientCommand.resetKernelHooks, unlessRestricted('Resetting hooks in the kernel', () => kernel.resetHooks())),
        vscode.commands.registerCommand(ClientCommand.runSweep, unlessRestricted('Running a patch sweep', () => sweeps!.runAtCursor())),
        vscode.commands.registerCommand(ClientCommand.showHeatmap, () => heatmap.showLatest()),
        vscode.commands.registerCommand(ClientCommand.openPicture, (args?: { id?: string }) => heatmap.openPicture(args)),
        vscode.commands.registerCommand(ClientCommand.restartServer, () => manager.restart('restart command')),
        vscode.workspace.onDidChangeConfiguration((e) => {
            if (affectsInterpreter(e)) {
                manager.scheduleRestart('tlens.interpreter changed');
            } else if (affectsServerSettings(e)) {
                void manager.sendSettings();
            }
        }),
        // Restricted Mode ends: the server starts again, with the workspace's own settings and told it may run code.
        vscode.workspace.onDidGrantWorkspaceTrust(() => manager.scheduleRestart('the workspace is now trusted')),
        await onActiveEnvironmentChanged(() => {
            if (!readSettings().interpreter) manager.scheduleRestart('active Python environment changed');
        }),
    );
    logInfo(`TLens ${context.extension.packageJSON.version} activating${vscode.workspace.isTrusted ? '' : ' in Restricted Mode (static analysis only)'}.`);
    void manager.restart('activation'); // activation does not wait for Python to start
}

/** Asks a fresh server for its kernel state (it may have attached `tlens.kernel.connectionFile`). */
async function refreshKernelStatus(manager: ServerManager, status: KernelStatusBar): Promise<void> {
    if (!manager.supportsCommand(ServerCommand.kernelStatus)) {
        return; // keeps the default "no kernel" state
    }
    try {
        const s = await manager.executeServerCommand<KernelStatus | null>(ServerCommand.kernelStatus);
        if (s?.state) status.setKernelStatus(s);
    } catch (err) {
        logError('Reading the kernel status failed.', err);
    }
}

export async function deactivate(): Promise<void> {
    await server?.dispose();
    server = undefined;
}
