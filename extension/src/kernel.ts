// The kernel the server runs sweeps in: a status bar item that follows `tlens/kernelStatus`, and the
// client side of attach / start / interrupt (the server does the Jupyter work).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { Jupyter } from '@vscode/jupyter-extension';
import { agoText, gatewayKernelsOf, gatewayPicks } from './gatewayKernels';
import { logInfo } from './log';
import {
    findNotebookConnectionFile,
    JUPYTER_EXTENSION_ID,
    lookupMessage,
    MANUAL_CODE,
    NotebookKernelLookup,
} from './notebookKernel';
import { ClientCommand, GatewayKernels, KernelStatus, ServerCommand } from './protocol';
import type { ServerManager, ServerState } from './server';
import { readSettings } from './settings';
import { MANAGE_TRUST_COMMAND, restrictedMessage } from './trust';

/** Status bar item: server start-up, then the kernel state (with sweep progress while busy). */
export class KernelStatusBar implements vscode.Disposable {
    private readonly item = vscode.window.createStatusBarItem('tlens.kernel', vscode.StatusBarAlignment.Left, 50);
    private server: ServerState = 'starting';
    private kernel: KernelStatus = { state: 'none' };

    constructor() {
        this.item.name = 'TLens Kernel';
        this.render();
        this.item.show();
    }

    get status(): KernelStatus {
        return this.kernel;
    }

    setServerState(state: ServerState): void {
        this.server = state;
        if (state !== 'running') {
            this.kernel = { state: 'none' }; // a new server process starts without a kernel
        }
        this.render();
    }

    setKernelStatus(status: KernelStatus): void {
        this.kernel = status;
        this.render();
    }

    dispose(): void {
        this.item.dispose();
    }

    private render(): void {
        const item = this.item;
        item.backgroundColor = undefined;
        item.command = ClientCommand.attachKernel;
        if (this.server !== 'running') {
            const starting = this.server === 'starting';
            item.text = starting ? '$(loading~spin) TLens' : '$(error) TLens: server stopped';
            item.tooltip = starting
                ? 'Starting the TLens language server…'
                : 'The TLens language server is not running (see the TLens output). Click to restart it.';
            item.command = starting ? undefined : ClientCommand.restartServer;
            if (!starting) {
                item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
            }
            return;
        }
        if (!vscode.workspace.isTrusted) {
            item.text = '$(shield) TLens: Restricted Mode';
            item.tooltip = restrictedMessage('Using a kernel') + '\nClick to manage workspace trust.';
            item.command = MANAGE_TRUST_COMMAND;
            return;
        }
        const k = this.kernel;
        const where = k.connectionFile ? `\n${k.connectionFile}` : k.gateway ? `\nkernel ${k.kernelId} on ${k.gateway}` : '';
        const detail = k.detail ? `\n${k.detail}` : '';
        switch (k.state) {
            case 'none':
                item.text = '$(circle-outline) TLens: no kernel';
                item.tooltip = 'No Jupyter kernel attached. Click to attach to a running kernel or start one.';
                break;
            case 'starting':
                item.text = '$(loading~spin) TLens: kernel starting';
                item.tooltip = `Kernel starting${where}${detail}`;
                break;
            case 'idle':
                item.text = '$(circle-filled) TLens: kernel idle';
                item.tooltip = `Kernel idle${where}${detail}\nClick to attach to another kernel.`;
                break;
            case 'busy': {
                const p = k.progress;
                item.text = p ? `$(sync~spin) TLens: busy ${p.done}/${p.total}` : '$(sync~spin) TLens: kernel busy';
                item.tooltip = `Kernel busy${where}${detail}\nUse "TLens: Interrupt Kernel" to stop it.`;
                item.command = ClientCommand.interruptKernel;
                break;
            }
            case 'dead':
                item.text = '$(error) TLens: kernel dead';
                item.tooltip = `The kernel stopped responding${where}${detail}\nClick to attach to another kernel or start one.`;
                item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
                break;
        }
    }
}

/** Directories where Jupyter (and VS Code's Jupyter extension) write kernel connection files. */
export function connectionFileDirs(): string[] {
    const home = os.homedir();
    const env = process.env;
    let runtime = env.JUPYTER_RUNTIME_DIR;
    if (!runtime) {
        // Mirrors jupyter_core.paths.jupyter_data_dir() / "runtime".
        const data =
            env.JUPYTER_DATA_DIR ??
            (process.platform === 'darwin'
                ? path.join(home, 'Library', 'Jupyter')
                : process.platform === 'win32'
                  ? path.join(env.APPDATA ?? home, 'jupyter')
                  : path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'jupyter'));
        runtime = path.join(data, 'runtime');
    }
    return [runtime, os.tmpdir()]; // VS Code's Jupyter extension writes kernel-v2-*.json to the temp dir
}

interface ConnectionFile {
    file: string;
    mtimeMs: number;
}

/** `kernel-*.json` files in the given directories plus `extraFiles`, newest first, each once. */
export function listConnectionFiles(dirs = connectionFileDirs(), extraFiles: string[] = []): ConnectionFile[] {
    const files = new Set(extraFiles.map((f) => path.resolve(f)));
    for (const dir of new Set(dirs)) {
        let names: string[];
        try {
            names = fs.readdirSync(dir);
        } catch {
            continue; // a missing runtime dir just means no kernels yet
        }
        for (const name of names) {
            if (/^kernel-.*\.json$/.test(name)) files.add(path.join(dir, name));
        }
    }
    const found: ConnectionFile[] = [];
    for (const file of files) {
        try {
            found.push({ file, mtimeMs: fs.statSync(file).mtimeMs });
        } catch {
            // removed since it was listed
        }
    }
    return found.sort((a, b) => b.mtimeMs - a.mtimeMs);
}

function ago(ms: number): string {
    return agoText(Date.now() - ms);
}

type Pick = vscode.QuickPickItem & {
    action: 'notebook' | 'file' | 'gateway' | 'browse' | 'start' | 'none';
    file?: string;
    kernelId?: string;
};

/** The notebook in the active editor (a Jupyter notebook), if any. */
export function activeJupyterNotebook(): vscode.NotebookDocument | undefined {
    const notebook = vscode.window.activeNotebookEditor?.notebook;
    return notebook?.notebookType === 'jupyter-notebook' ? notebook : undefined;
}

function notebookName(notebook: vscode.NotebookDocument): string {
    return path.basename(notebook.uri.path);
}

function hasJupyterExtension(): boolean {
    return vscode.extensions.getExtension(JUPYTER_EXTENSION_ID) !== undefined;
}

/**
 * Quick pick over connection files (newest first), the Jupyter gateway's running kernels, "Browse…" and
 * "Start a new kernel" (on the gateway when one is set); with a notebook in the active editor, "This
 * notebook's kernel" comes first.
 */
export async function pickConnectionFile(
    fromServer: string[] = [],
    notebook: vscode.NotebookDocument | undefined = activeJupyterNotebook(),
    gateway: GatewayKernels = {},
): Promise<Pick | undefined> {
    const files = listConnectionFiles(connectionFileDirs(), fromServer);
    const items: Pick[] = [];
    if (notebook) {
        const viaJupyter = hasJupyterExtension();
        items.push({
            label: "$(notebook) This notebook's kernel",
            description: viaJupyter
                ? notebookName(notebook)
                : `${notebookName(notebook)} · by hand: the Jupyter extension is not installed`,
            detail: viaJupyter
                ? 'Asks the Jupyter extension for the connection file of the kernel this notebook runs on'
                : `Run ${MANUAL_CODE} in a cell, then paste the path it prints`,
            action: 'notebook',
        });
    }
    for (const f of files) {
        items.push({ label: path.basename(f.file), description: ago(f.mtimeMs), detail: f.file, action: 'file', file: f.file });
    }
    const remote = gatewayPicks(gateway);
    if (remote.length) {
        items.push({ label: `Jupyter gateway ${gateway.gateway}`, kind: vscode.QuickPickItemKind.Separator, action: 'none' });
        items.push(...remote.map((p): Pick => ({ ...p, action: p.kernelId ? 'gateway' : 'none' })));
    }
    items.push(
        { label: '$(folder-opened) Browse…', description: 'choose a connection file', action: 'browse' },
        {
            label: '$(add) Start a new kernel',
            description: gateway.gateway ? `on the Jupyter gateway ${gateway.gateway}` : 'with tlens.kernel.interpreter',
            action: 'start',
        },
    );
    return vscode.window.showQuickPick(items, {
        title: 'TLens: attach to a Jupyter kernel',
        placeHolder: files.length
            ? 'Connection file of the kernel to attach to (newest first)'
            : 'No running kernels found; browse for a connection file or start a kernel',
        matchOnDetail: true,
    });
}

/** Client side of attach/start/interrupt: pickers, then the server commands. */
export class KernelCommands {
    constructor(private readonly server: ServerManager) {}

    async attach(): Promise<void> {
        const notebook = activeJupyterNotebook(); // before the picker: it does not change the active editor
        const [files, gateway] = await Promise.all([this.serverConnectionFiles(), this.gatewayKernels()]);
        const pick = await pickConnectionFile(files, notebook, gateway);
        if (!pick || pick.action === 'none') return;
        if (pick.action === 'gateway' && pick.kernelId) {
            await this.run(ServerCommand.attachKernel, { kernelId: pick.kernelId });
            return;
        }
        if (pick.action === 'start') {
            await this.start();
            return;
        }
        if (pick.action === 'notebook' && notebook) {
            await this.attachNotebookKernel(notebook);
            return;
        }
        let file = pick.file;
        if (pick.action === 'browse') {
            const chosen = await vscode.window.showOpenDialog({
                title: 'Jupyter connection file',
                canSelectMany: false,
                filters: { 'Connection file': ['json'] },
                defaultUri: vscode.Uri.file(connectionFileDirs()[0]),
            });
            file = chosen?.[0]?.fsPath;
        }
        if (file) {
            await this.run(ServerCommand.attachKernel, { connectionFile: file });
        }
    }

    /**
     * Attaches to the kernel `notebook` runs on: its connection file comes from the Jupyter extension's
     * kernels API, or, without that extension (or when it refuses), from the user (`attachByHand`).
     */
    async attachNotebookKernel(notebook: vscode.NotebookDocument): Promise<void> {
        const name = notebookName(notebook);
        const extension = vscode.extensions.getExtension<Jupyter>(JUPYTER_EXTENSION_ID);
        if (!extension) {
            await this.attachByHand(name);
            return;
        }
        const result = await vscode.window.withProgress(
            {
                location: vscode.ProgressLocation.Notification,
                title: `TLens: asking ${name}'s kernel for its connection file…`,
                cancellable: true,
            },
            async (_progress, token): Promise<NotebookKernelLookup> => {
                try {
                    const api = extension.isActive ? extension.exports : await extension.activate();
                    if (!api?.kernels) {
                        return { kind: 'failed', detail: 'this version of the Jupyter extension has no kernels API; update it' };
                    }
                    return await findNotebookConnectionFile(api.kernels, notebook.uri, token, { exists: fs.existsSync });
                } catch (err) {
                    return { kind: 'failed', detail: `the Jupyter extension did not start: ${err instanceof Error ? err.message : String(err)}` };
                }
            },
        );
        logInfo(`Notebook kernel lookup for ${notebook.uri.toString()}: ${JSON.stringify(result)}`);
        if (result.kind === 'found') {
            await this.run(ServerCommand.attachKernel, { connectionFile: result.connectionFile });
            return;
        }
        const message = lookupMessage(result, name);
        if (!message) return; // cancelled
        const byHand = 'Attach by Hand…';
        const offerByHand = result.kind === 'denied' || result.kind === 'failed';
        const show = result.kind === 'no-kernel' || result.kind === 'timeout' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
        const choice = await show(message, ...(offerByHand ? [byHand] : []));
        if (choice === byHand) await this.attachByHand(name);
    }

    /** Asks for the connection file the user printed in the notebook (the code goes to the clipboard). */
    async attachByHand(notebookName: string): Promise<void> {
        await vscode.env.clipboard.writeText(MANUAL_CODE);
        const file = await vscode.window.showInputBox({
            title: `TLens: attach to ${notebookName}'s kernel by hand`,
            prompt: `Run ${MANUAL_CODE} in a cell of ${notebookName} (copied to the clipboard) and paste the path it prints.`,
            placeHolder: '/path/to/kernel-….json',
            ignoreFocusOut: true,
            validateInput: (value) => {
                const v = value.trim();
                if (!v) return undefined;
                if (!v.endsWith('.json')) return 'A connection file is a .json path, e.g. …/kernel-1234.json';
                return fs.existsSync(v) ? undefined : `No such file on this machine: ${v}`;
            },
        });
        const connectionFile = file?.trim();
        if (connectionFile) await this.run(ServerCommand.attachKernel, { connectionFile });
    }

    /** Starts a kernel with `tlens.kernel.interpreter` (the server's interpreter when empty). */
    async start(): Promise<boolean> {
        const interpreter = readSettings().kernel.interpreter;
        return this.run(ServerCommand.startKernel, interpreter ? { interpreter } : {});
    }

    async interrupt(): Promise<void> {
        await this.run(ServerCommand.interruptKernel);
    }

    /** Removes the hooks that user code left on the model in the kernel. */
    /** The server reports the outcome itself (how many hooks went, that permanent ones stay, or the error). */
    async resetHooks(): Promise<void> {
        await this.run(ServerCommand.resetKernelHooks);
    }

    /** Connection files the server knows of (it may look in more places); none if it cannot say. */
    private async serverConnectionFiles(): Promise<string[]> {
        if (!this.server.supportsCommand(ServerCommand.listConnectionFiles)) return [];
        try {
            const files = await this.server.executeServerCommand<unknown>(ServerCommand.listConnectionFiles);
            return Array.isArray(files) ? files.filter((f): f is string => typeof f === 'string') : [];
        } catch {
            return []; // the local scan still lists the usual places
        }
    }

    /** The Jupyter gateway's running kernels (none when no gateway is set or the server cannot list them). */
    private async gatewayKernels(): Promise<GatewayKernels> {
        if (!this.server.supportsCommand(ServerCommand.listGatewayKernels)) return {};
        try {
            return gatewayKernelsOf(await this.server.executeServerCommand<unknown>(ServerCommand.listGatewayKernels));
        } catch {
            return {};
        }
    }

    /** Runs a server command; failures become one error message. Returns whether it succeeded. */
    private async run(command: string, ...args: unknown[]): Promise<boolean> {
        try {
            await this.server.executeServerCommand(command, ...args);
            return true;
        } catch (err) {
            void vscode.window.showErrorMessage(`TLens: ${command} failed: ${err instanceof Error ? err.message : String(err)}`);
            return false;
        }
    }
}
