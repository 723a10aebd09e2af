// Entry point: builds the parts and wires VS Code events to them. Logic lives in the other modules.
import * as vscode from 'vscode';
import { HeatmapPanel } from './heatmap';
import { KernelCommands, KernelStatusBar } from './kernel';
import { logError, logInfo } from './log';
import { ClientCommand, KernelStatus, ServerCommand } from './protocol';
import { onActiveEnvironmentChanged } from './python';
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
        vscode.commands.registerCommand(ClientCommand.attachKernel, () => kernel.attach()),
        vscode.commands.registerCommand(ClientCommand.startKernel, () => kernel.start()),
        vscode.commands.registerCommand(ClientCommand.interruptKernel, () => kernel.interrupt()),
        vscode.commands.registerCommand(ClientCommand.resetKernelHooks, () => kernel.resetHooks()),
        vscode.commands.registerCommand(ClientCommand.runSweep, () => sweeps!.runAtCursor()),
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
        await onActiveEnvironmentChanged(() => {
            if (!readSettings().interpreter) manager.scheduleRestart('active Python environment changed');
        }),
    );
    logInfo(`TLens ${context.extension.packageJSON.version} activating.`);
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
