// Owns the language-client lifecycle: one client at a time, rapid restart requests merged into one,
// the old client stopped before a new one starts.
import * as fs from 'fs';
import * as vscode from 'vscode';
import {
    DidChangeConfigurationNotification,
    ExecuteCommandRequest,
    LanguageClient,
    LanguageClientOptions,
    Middleware,
    RevealOutputChannelOn,
    ServerOptions,
    State,
    TransportKind,
} from 'vscode-languageclient/node';
import { logChannel, logError, logInfo } from './log';
import { ClientCommand, KernelStatus, Notification, ServerCommand, SweepResult, WORKSPACE_TRUSTED } from './protocol';
import { diagnoseInterpreter, Interpreter, resolveInterpreter } from './python';
import { readSettings, settingsScope } from './settings';
import { reportStartFailure } from './startFailure';

/**
 * Answers the server's `workspace/configuration` for the `tlens` section with each folder's settings in
 * the wire shape of `initializationOptions` (paths expanded), so a multi-root workspace can give each
 * folder its own interpreter, TransformerLens version or severities.
 */
const folderSettings: NonNullable<NonNullable<Middleware['workspace']>['configuration']> = (params, token, next) => {
    if (!params.items.every((item) => item.section === 'tlens')) {
        return next(params, token);
    }
    return params.items.map((item) => {
        const folder = item.scopeUri ? vscode.workspace.getWorkspaceFolder(vscode.Uri.parse(item.scopeUri)) : undefined;
        return readSettings(folder ?? settingsScope());
    });
};

/** Where the server process stands, for the status bar. */
export type ServerState = 'starting' | 'running' | 'stopped' | 'failed';

export interface ServerHooks {
    onKernelStatus(status: KernelStatus): void;
    onSweepResult(result: SweepResult): void;
    onServerState(state: ServerState): void;
    /** Runs in place of the server command `command` when the user invokes it (e.g. from a code action). */
    executeCommand: Middleware['executeCommand'];
    /** A folder of the extension's own (not the workspace's): the server's working directory in Restricted Mode. */
    safeDirectory: string;
}

const RESTART_DEBOUNCE_MS = 300;
const STOP_TIMEOUT_MS = 2000;

// Editor features that query the server. While a client stops (window close, restart) they answer
// empty: a request racing the stop would otherwise fail inside languageclient with "Starting server
// failed" and a stack trace in the output channel.
const QUERY_MIDDLEWARE = [
    'provideHover',
    'provideCompletionItem',
    'provideCodeActions',
    'provideCodeLenses',
    'provideInlayHints',
    'provideDefinition',
    'provideReferences',
    'provideDocumentSymbols',
    'provideWorkspaceSymbols',
] as const;

// Commands that hover markdown may link to (`command:` links need isTrusted); nothing else is trusted.
const TRUSTED_COMMANDS = [ServerCommand.runSweep, ClientCommand.showHeatmap, ClientCommand.startKernel, ClientCommand.openPicture];

export class ServerManager implements vscode.Disposable {
    private client: LanguageClient | undefined;
    private stopping = false;
    private running: Promise<void> | undefined;
    private restartAgain = false;
    private debounce: NodeJS.Timeout | undefined;

    constructor(private readonly hooks: ServerHooks) {}

    /** The running client, or undefined while none is up. */
    get current(): LanguageClient | undefined {
        return this.client?.isRunning() ? this.client : undefined;
    }

    /** Restarts after a short pause; calls in that pause make one restart. */
    scheduleRestart(reason: string): void {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.restart(reason), RESTART_DEBOUNCE_MS);
    }

    /** Restarts now. A request during a restart runs one more restart after it, never two at once. */
    restart(reason: string): Promise<void> {
        logInfo(`Server restart: ${reason}`);
        if (this.running) {
            this.restartAgain = true;
            return this.running;
        }
        this.running = (async () => {
            do {
                this.restartAgain = false;
                await this.stopClient();
                await this.startClient();
            } while (this.restartAgain);
        })().finally(() => (this.running = undefined));
        return this.running;
    }

    /** Sends the current settings; the server re-reads them without a restart. */
    async sendSettings(): Promise<void> {
        const client = this.current;
        if (client) {
            await client.sendNotification(DidChangeConfigurationNotification.type, { settings: readSettings() });
        }
    }

    /** Whether the running server advertises `command` (executeCommandProvider). */
    supportsCommand(command: string): boolean {
        return this.current?.initializeResult?.capabilities.executeCommandProvider?.commands.includes(command) ?? false;
    }

    /** Runs a server command (workspace/executeCommand) and returns its result. */
    async executeServerCommand<T>(command: string, ...args: unknown[]): Promise<T> {
        const client = this.current;
        if (!client) {
            throw new Error('The TLens language server is not running. Run "TLens: Restart Language Server".');
        }
        if (!this.supportsCommand(command)) {
            throw new Error(`this version of the TLens server has no command ${command}; update tlens-lsp.`);
        }
        return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
    }

    async dispose(): Promise<void> {
        clearTimeout(this.debounce);
        await this.running;
        await this.stopClient();
    }

    private async stopClient(): Promise<void> {
        const old = this.client;
        this.client = undefined;
        if (!old) {
            return;
        }
        this.stopping = true;
        // Requests already past the middleware get their connection before it goes.
        await new Promise((resolve) => setImmediate(resolve));
        try {
            await old.dispose(STOP_TIMEOUT_MS);
        } catch (err) {
            logError('Stopping the old server failed; continuing.', err);
        } finally {
            this.stopping = false;
        }
    }

    /** Middleware that answers nothing while the client stops, and passes through otherwise. */
    private queryMiddleware(): Middleware {
        const middleware: Record<string, unknown> = {};
        for (const name of QUERY_MIDDLEWARE) {
            middleware[name] = (...args: unknown[]) => {
                const next = args.pop() as (...rest: unknown[]) => unknown;
                return this.stopping ? undefined : next(...args);
            };
        }
        return middleware as Middleware;
    }

    private async startClient(): Promise<void> {
        const interpreter = await resolveInterpreter();
        const problem = await diagnoseInterpreter(interpreter.command, this.processOptions());
        if (problem.kind === 'python-missing' || problem.kind === 'server-not-installed') {
            logError(`Not starting the server: ${problem.detail}`);
            this.hooks.onServerState('failed');
            void reportStartFailure(interpreter, problem);
            return;
        }
        const client = this.createClient(interpreter);
        this.client = client;
        this.hooks.onServerState('starting');
        logInfo(`Starting the server: ${interpreter.command} -m lsp_server serve (interpreter from ${interpreter.source})`);
        try {
            await client.start();
        } catch (err) {
            logError('The server did not start.', err);
            this.client = undefined;
            this.hooks.onServerState('failed');
            void client.dispose(STOP_TIMEOUT_MS).catch(() => undefined);
            void reportStartFailure(interpreter);
            return;
        }
        this.hooks.onServerState('running');
        logInfo('Server started.');
    }

    /**
     * Where the server's Python runs. `python -m` puts its working directory first on sys.path, so in an
     * untrusted workspace it runs in the extension's own folder, with PYTHONSAFEPATH (3.11+) as well: a
     * workspace's `lsp_server/` or `pygls.py` must not be what Python imports.
     */
    private processOptions(): { cwd?: string; env: NodeJS.ProcessEnv } {
        const env = { ...process.env, PYTHONUNBUFFERED: '1' };
        if (vscode.workspace.isTrusted) {
            return { cwd: settingsScope()?.uri.fsPath, env };
        }
        fs.mkdirSync(this.hooks.safeDirectory, { recursive: true });
        return { cwd: this.hooks.safeDirectory, env: { ...env, PYTHONSAFEPATH: '1' } };
    }

    private createClient(interpreter: Interpreter): LanguageClient {
        const serverOptions: ServerOptions = {
            command: interpreter.command,
            args: ['-m', 'lsp_server', 'serve'], // languageclient appends --stdio
            transport: TransportKind.stdio,
            options: this.processOptions(),
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [
                { scheme: 'file', language: 'python' },
                { scheme: 'untitled', language: 'python' },
                { notebook: { notebookType: 'jupyter-notebook' }, language: 'python' },
            ],
            initializationOptions: { settings: readSettings(), [WORKSPACE_TRUSTED]: vscode.workspace.isTrusted },
            outputChannel: logChannel(),
            traceOutputChannel: logChannel(),
            revealOutputChannelOn: RevealOutputChannelOn.Never, // our own message says what failed
            initializationFailedHandler: () => false,
            markdown: { isTrusted: { enabledCommands: TRUSTED_COMMANDS }, supportHtml: true },
            middleware: {
                ...this.queryMiddleware(),
                executeCommand: this.hooks.executeCommand,
                workspace: { configuration: folderSettings },
            },
        };
        // The id 'tlens' makes languageclient follow the `tlens.trace.server` setting.
        const client = new LanguageClient('tlens', 'TLens Language Server', serverOptions, clientOptions);
        client.onNotification(Notification.kernelStatus, (s: KernelStatus) => this.hooks.onKernelStatus(s));
        client.onNotification(Notification.sweepResult, (r: SweepResult) => this.hooks.onSweepResult(r));
        // Follows crashes and languageclient's own restarts after start-up succeeded.
        client.onDidChangeState((e) => {
            if (client !== this.client || e.oldState === State.Starting) {
                return; // start-up is reported by startClient
            }
            this.hooks.onServerState(e.newState === State.Running ? 'running' : e.newState === State.Starting ? 'starting' : 'stopped');
        });
        return client;
    }
}
