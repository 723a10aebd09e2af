// Reads the `tlens.*` settings into the object the server expects in
// `initializationOptions.settings` and in `workspace/didChangeConfiguration`.
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';

export type Severity = 'error' | 'warning' | 'information' | 'hint' | 'off';

/** Wire shape: the manifest's camelCase keys without the `tlens.` prefix, nested as objects. */
export interface ServerSettings {
    interpreter: string;
    inlayHints: { enabled: boolean };
    diagnostics: { severity: Record<string, Severity> };
    sweep: { defaultKind: string; normalize: boolean; kernels: number | string[] };
    kernel: { connectionFile: string; interpreter: string; gateway: { url: string; token: string } };
    transformerLensVersion: string;
    trace: { server: string };
}

/** The workspace folder whose settings are pushed to the server (the first one); the server also asks
 * each folder for its own (`workspace/configuration`). */
export function settingsScope(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
}

/** Expands `~`, `${workspaceFolder}`, `${userHome}` and `${env:NAME}` in a path-like setting. */
export function expandPath(value: string, folder = settingsScope()): string {
    let out = value.trim();
    if (!out) {
        return out;
    }
    out = out
        .replace(/\$\{workspaceFolder\}/g, folder?.uri.fsPath ?? process.cwd())
        .replace(/\$\{userHome\}/g, os.homedir())
        .replace(/\$\{env:([^}]+)\}/g, (_m, name: string) => process.env[name] ?? '');
    if (out === '~' || out.startsWith('~/')) {
        out = path.join(os.homedir(), out.slice(1));
    }
    return out;
}

export function readSettings(folder = settingsScope()): ServerSettings {
    const cfg = vscode.workspace.getConfiguration('tlens', folder);
    return {
        interpreter: expandPath(cfg.get<string>('interpreter', ''), folder),
        inlayHints: { enabled: cfg.get<boolean>('inlayHints.enabled', true) },
        diagnostics: { severity: { ...cfg.get<Record<string, Severity>>('diagnostics.severity', {}) } },
        sweep: {
            defaultKind: cfg.get<string>('sweep.defaultKind', 'resid_pre'),
            normalize: cfg.get<boolean>('sweep.normalize', true),
            kernels: cfg.get<number | string[]>('sweep.kernels', 1),
        },
        kernel: {
            connectionFile: expandPath(cfg.get<string>('kernel.connectionFile', ''), folder),
            interpreter: expandPath(cfg.get<string>('kernel.interpreter', ''), folder),
            gateway: {
                url: cfg.get<string>('kernel.gateway.url', '').trim(),
                token: cfg.get<string>('kernel.gateway.token', '').trim(),
            },
        },
        transformerLensVersion: cfg.get<string>('transformerLensVersion', '').trim(),
        trace: { server: cfg.get<string>('trace.server', 'off') },
    };
}

/** True when a configuration change touches a setting the server reads. */
export function affectsServerSettings(e: vscode.ConfigurationChangeEvent): boolean {
    return e.affectsConfiguration('tlens');
}

/** True when the change needs a new server process (a different interpreter). */
export function affectsInterpreter(e: vscode.ConfigurationChangeEvent): boolean {
    return e.affectsConfiguration('tlens.interpreter');
}
