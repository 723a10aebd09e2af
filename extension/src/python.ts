// Which Python runs the server: `tlens.interpreter` > the Python extension's active environment
// (only when ms-python.python is installed; it is optional) > `python3` on PATH.
import { execFile } from 'child_process';
import * as vscode from 'vscode';
import { PVSC_EXTENSION_ID, PythonExtension } from '@vscode/python-extension';
import { logInfo, logWarn } from './log';
import { readSettings, settingsScope } from './settings';
import { insideFolders } from './trust';

export type InterpreterSource = 'setting' | 'python-extension' | 'path';

export interface Interpreter {
    command: string;
    source: InterpreterSource;
}

const PATH_FALLBACK = process.platform === 'win32' ? 'python' : 'python3';

/** The interpreter to launch the server with. In Restricted Mode, none that lies inside the workspace. */
export async function resolveInterpreter(): Promise<Interpreter> {
    const fromSetting = readSettings().interpreter;
    if (fromSetting && allowed(fromSetting, 'setting')) {
        return { command: fromSetting, source: 'setting' };
    }
    const fromExtension = await activeEnvironmentOfPythonExtension();
    if (fromExtension && allowed(fromExtension, 'python-extension')) {
        return { command: fromExtension, source: 'python-extension' };
    }
    return { command: PATH_FALLBACK, source: 'path' };
}

/** Whether the server may run `command`: in an untrusted workspace, not a program the workspace holds. */
function allowed(command: string, source: InterpreterSource): boolean {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    if (vscode.workspace.isTrusted || !insideFolders(command, folders)) {
        return true;
    }
    logWarn(`Restricted Mode: not running ${command} (${source}): it lies inside the workspace, which is not trusted.`);
    return false;
}

async function activeEnvironmentOfPythonExtension(): Promise<string | undefined> {
    if (!vscode.extensions.getExtension(PVSC_EXTENSION_ID)) {
        return undefined;
    }
    try {
        const api = await PythonExtension.api();
        const envPath = api.environments.getActiveEnvironmentPath(settingsScope()?.uri);
        const env = await api.environments.resolveEnvironment(envPath);
        return env?.executable.uri?.fsPath;
    } catch (err) {
        logWarn(`Could not read the Python extension's active environment: ${String(err)}`);
        return undefined;
    }
}

/** Calls `onChange` when the Python extension's active environment changes (no-op without it). */
export async function onActiveEnvironmentChanged(onChange: () => void): Promise<vscode.Disposable> {
    if (!vscode.extensions.getExtension(PVSC_EXTENSION_ID)) {
        return new vscode.Disposable(() => undefined);
    }
    try {
        const api = await PythonExtension.api();
        return api.environments.onDidChangeActiveEnvironmentPath(() => {
            logInfo('The Python extension switched environments.');
            onChange();
        });
    } catch (err) {
        logWarn(`Could not watch the Python extension's environment: ${String(err)}`);
        return new vscode.Disposable(() => undefined);
    }
}

/** Whether the interpreter can run the server, found by asking it directly. */
export type StartProblem =
    | { kind: 'ok'; detail: string }
    | { kind: 'python-missing'; detail: string }
    | { kind: 'server-not-installed'; detail: string }
    | { kind: 'other'; detail: string };

// Finds the package without importing it: one bare interpreter start (tens of ms), before the server
// starts, so a broken interpreter gets one clear message instead of a failed client.
const PROBE = "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('lsp_server') else 3)";

export function diagnoseInterpreter(python: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<StartProblem> {
    return new Promise((resolve) => {
        execFile(python, ['-c', PROBE], { timeout: 20_000, ...options }, (err, _stdout, stderr) => {
            if (!err) {
                resolve({ kind: 'ok', detail: 'lsp_server is importable.' });
            } else if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES') {
                resolve({ kind: 'python-missing', detail: `'${python}' was not found or is not executable.` });
            } else if (err.code === 3) {
                resolve({ kind: 'server-not-installed', detail: `'${python}' cannot import lsp_server.` });
            } else {
                resolve({ kind: 'other', detail: `'${python}' failed: ${stderr.trim() || err.message}` });
            }
        });
    });
}
