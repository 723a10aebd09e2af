// Webview panel with the latest sweep heatmap (or a live picture from a hover): the PNG large, the cell
// value under the mouse, Save PNG; for a sweep, the experiment's past runs to switch between and
// "Compare with previous".
import * as crypto from 'crypto';
import * as path from 'path';
import * as vscode from 'vscode';
import { logError } from './log';
import { ServerCommand, SweepResult } from './protocol';

/** Runs a server command (the panel asks for past runs and differences). */
export type ServerRequest = <T>(command: string, args: unknown) => Promise<T>;

const VIEW_TYPE = 'tlens.heatmap';

export class HeatmapPanel implements vscode.Disposable {
    private panel: vscode.WebviewPanel | undefined;
    private latest: SweepResult | undefined;
    private readonly mediaRoot: vscode.Uri;

    constructor(
        extensionUri: vscode.Uri,
        private readonly request?: ServerRequest,
    ) {
        this.mediaRoot = vscode.Uri.joinPath(extensionUri, 'extension', 'media');
    }

    /** "Open in panel" of a live-picture hover: asks the server for the picture large. */
    async openPicture(args: { id?: string } | undefined): Promise<void> {
        await this.showFromServer(ServerCommand.livePicture, { id: args?.id }, 'could not open the picture');
    }

    private async showFromServer(command: string, args: unknown, failure: string): Promise<void> {
        if (!this.request) return;
        try {
            const result = await this.request<SweepResult | { error: string }>(command, args);
            if ('error' in result) {
                void vscode.window.showErrorMessage(`TLens: ${failure}: ${result.error}`);
            } else if (result.png) {
                this.show(result); // a compare answers without png: its tlens/sweepResult shows it
            }
        } catch (err) {
            logError(`TLens: ${failure}`, err);
            void vscode.window.showErrorMessage(`TLens: ${failure}: ${String(err)}`);
        }
    }

    /** Shows a new result (opening the panel beside the editor without taking focus). */
    show(result: SweepResult): void {
        this.latest = result;
        this.reveal();
    }

    /** Palette command: shows the latest result again. */
    showLatest(): void {
        if (!this.latest) {
            void vscode.window.showInformationMessage(
                'TLens: no sweep result yet. Run "Run patch sweep" from the light bulb on a patching line, or "TLens: Run Patch Sweep at Cursor".',
            );
            return;
        }
        this.reveal();
    }

    dispose(): void {
        this.panel?.dispose();
    }

    private reveal(): void {
        const result = this.latest;
        if (!result) return;
        if (!this.panel) {
            this.panel = vscode.window.createWebviewPanel(
                VIEW_TYPE,
                'TLens Heatmap',
                { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
                { enableScripts: true, localResourceRoots: [this.mediaRoot] },
            );
            this.panel.onDidDispose(() => (this.panel = undefined));
            this.panel.webview.onDidReceiveMessage((msg: { type?: string; jsonPath?: string }) => {
                if (msg?.type === 'save') void this.savePng();
                if (msg?.type === 'openJson') void this.openJson();
                const shown = this.latest;
                if (msg?.type === 'openRun' && shown && msg.jsonPath) {
                    void this.showFromServer(
                        ServerCommand.showSweep,
                        { uri: shown.uri, line: shown.line, jsonPath: msg.jsonPath },
                        'could not show that run',
                    );
                }
                if (msg?.type === 'compare' && shown) {
                    void this.showFromServer(ServerCommand.compareSweeps, { uri: shown.uri, line: shown.line }, 'could not compare');
                }
            });
        } else {
            this.panel.reveal(undefined, true);
        }
        this.panel.title = `TLens: ${result.title}`;
        this.panel.webview.html = renderHtml(this.panel.webview, this.mediaRoot, result);
    }

    private async savePng(): Promise<void> {
        const result = this.latest;
        if (!result) return;
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const name = result.pngPath ? path.basename(result.pngPath) : `tlens-sweep-${result.kind}.png`;
        const target = await vscode.window.showSaveDialog({
            title: 'Save heatmap PNG',
            defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
            filters: { 'PNG image': ['png'] },
        });
        if (!target) return;
        try {
            await vscode.workspace.fs.writeFile(target, Buffer.from(result.png, 'base64'));
            void vscode.window.showInformationMessage(`TLens: saved ${target.fsPath}`);
        } catch (err) {
            logError(`Saving ${target.fsPath} failed`, err);
            void vscode.window.showErrorMessage(`TLens: could not save ${target.fsPath}: ${String(err)}`);
        }
    }

    private async openJson(): Promise<void> {
        if (this.latest?.jsonPath) {
            await vscode.window.showTextDocument(vscode.Uri.file(this.latest.jsonPath), { preview: true });
        }
    }
}

function renderHtml(webview: vscode.Webview, mediaRoot: vscode.Uri, r: SweepResult): string {
    const nonce = crypto.randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot, 'heatmap.js'));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot, 'heatmap.css'));
    // Only our script and stylesheet run; the image is inline data. JSON goes in a non-executed script tag.
    const csp = [
        "default-src 'none'",
        'img-src data:',
        `style-src ${webview.cspSource}`,
        `script-src 'nonce-${nonce}'`,
    ].join('; ');
    const data = JSON.stringify({ panels: r.panels ?? [] }).replace(/</g, '\\u003c');
    const partial = r.partial
        ? '<p class="partial">Partial result: the sweep was cancelled or interrupted before every cell ran.</p>'
        : '';
    const json = r.jsonPath ? '<button id="open-json">Open JSON</button>' : '';
    const runs = r.history ?? [];
    const history = runs.length > 1
        ? `<label class="runs">Runs of this experiment <select id="runs">${runs
              .map((run) => `<option value="${escapeHtml(run.jsonPath)}"${run.current ? ' selected' : ''}>${escapeHtml(run.label)}</option>`)
              .join('')}</select></label><button id="compare">Compare with previous</button>`
        : '';
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>${escapeHtml(r.title)}</title>
</head>
<body>
<header>
  <h1>${escapeHtml(r.title)}</h1>
  <p class="meta">${escapeHtml(describe(r))}</p>
  ${partial}
  <div class="actions"><button id="save">Save PNG</button>${json}${history}</div>
</header>
<p id="readout" class="readout" aria-live="polite"></p>
<img id="heatmap" alt="${escapeHtml(r.title)}" src="data:image/png;base64,${r.png}">
<script id="sweep-data" type="application/json">${data}</script>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}

function describe(r: SweepResult): string {
    if (r.kind === 'picture') return [r.metric, r.summary].filter((part) => part).join(' · '); // a live picture
    const parts = [`kind ${r.kind}`, `metric ${r.metric}`, `line ${r.line + 1}`];
    if (r.cellsTotal) parts.push(`${r.cellsDone ?? r.cellsTotal}/${r.cellsTotal} cells`);
    if (r.elapsed !== undefined) parts.push(`${r.elapsed.toFixed(1)} s`);
    if (r.summary) parts.push(`strongest: ${r.summary}`);
    return parts.join(' · ');
}

function escapeHtml(s: string): string {
    return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
