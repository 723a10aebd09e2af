// The connection file of the kernel a notebook runs on, asked of the Jupyter extension (ms-toolsai.jupyter),
// which owns notebook kernels in VS Code. Its public kernels API runs code in the kernel silently: no
// execution count, nothing in the notebook. It shares a kernel only after the user consented and only once
// the notebook has executed a cell. No runtime import of `vscode`, so unit tests run it under plain Node.
import type { Kernel, Kernels } from '@vscode/jupyter-extension';
import type { CancellationToken, Uri } from 'vscode';

export const JUPYTER_EXTENSION_ID = 'ms-toolsai.jupyter';

/** Run silently in the notebook's kernel; `__import__` binds no name in the user's namespace. */
export const CONNECTION_FILE_CODE = 'print(__import__("ipykernel").get_connection_file())';

/** What the user runs by hand when the extension cannot ask the kernel itself. */
export const MANUAL_CODE = 'import ipykernel; print(ipykernel.get_connection_file())';

/** How long to wait for the kernel: our request is queued behind a running cell. */
export const DEFAULT_TIMEOUT_MS = 30_000;

// Stream and error mimes of the kernels API. The API's doc names the x.notebook stream mimes; the Jupyter
// extension emits the vnd.code ones (NotebookCellOutputItem.stdout/error); both are accepted.
const STDOUT_MIMES = new Set(['application/vnd.code.notebook.stdout', 'application/x.notebook.stream.stdout', 'text/plain']);
const ERROR_MIME = 'application/vnd.code.notebook.error';
const ACCESS_REVOKED = 'vscode.jupyter.apiAccessRevoked';

export type NotebookKernelLookup =
    | { kind: 'found'; connectionFile: string }
    | { kind: 'no-jupyter' } // the Jupyter extension is not installed
    | { kind: 'no-kernel' } // not started, or no cell executed yet
    | { kind: 'not-python'; language: string }
    | { kind: 'denied' } // the user refused (or revoked) kernel access
    | { kind: 'cancelled' }
    | { kind: 'timeout'; seconds: number }
    | { kind: 'not-local'; connectionFile: string } // e.g. a kernel on a remote Jupyter server
    | { kind: 'failed'; detail: string };

export interface LookupOptions {
    /** Whether a path exists on this machine (the server can only attach to local kernels). */
    exists: (file: string) => boolean;
    timeoutMs?: number;
}

/**
 * Asks the notebook's kernel for its connection file through the Jupyter extension's kernels API.
 *
 * @param kernels `jupyterApi.kernels`, or undefined when the Jupyter extension is not installed.
 * @param notebook the notebook document's URI.
 * @param token cancels the request (the Jupyter extension then drops or interrupts only our code).
 */
export async function findNotebookConnectionFile(
    kernels: Pick<Kernels, 'getKernel'> | undefined,
    notebook: Uri,
    token: CancellationToken,
    options: LookupOptions,
): Promise<NotebookKernelLookup> {
    if (!kernels) return { kind: 'no-jupyter' };
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let kernel: Kernel | undefined;
    try {
        kernel = await kernels.getKernel(notebook);
    } catch (err) {
        return fromError(err);
    }
    if (!kernel) return { kind: 'no-kernel' };
    if (kernel.language && kernel.language.toLowerCase() !== 'python') {
        return { kind: 'not-python', language: kernel.language };
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
        const outcome = await Promise.race([readOutputs(kernel, token), timedOut]);
        if (token.isCancellationRequested) return { kind: 'cancelled' };
        if (outcome === 'timeout') return { kind: 'timeout', seconds: Math.round(timeoutMs / 1000) };
        if (outcome.error) return { kind: 'failed', detail: outcome.error };
        const file = connectionFileIn(outcome.stdout);
        if (!file) {
            const printed = outcome.stdout.trim();
            return { kind: 'failed', detail: printed ? `the kernel printed ${JSON.stringify(printed.slice(0, 200))}, not a connection file` : 'the kernel printed nothing' };
        }
        return options.exists(file) ? { kind: 'found', connectionFile: file } : { kind: 'not-local', connectionFile: file };
    } catch (err) {
        return token.isCancellationRequested ? { kind: 'cancelled' } : fromError(err);
    } finally {
        clearTimeout(timer);
    }
}

/** Stdout text and the first error of one execution. */
async function readOutputs(kernel: Kernel, token: CancellationToken): Promise<{ stdout: string; error?: string }> {
    const decoder = new TextDecoder();
    let stdout = '';
    let error: string | undefined;
    for await (const output of kernel.executeCode(CONNECTION_FILE_CODE, token)) {
        for (const item of output.items) {
            if (item.mime === ERROR_MIME) {
                error ??= describeKernelError(decoder.decode(item.data));
            } else if (STDOUT_MIMES.has(item.mime)) {
                stdout += decoder.decode(item.data);
            }
        }
    }
    return { stdout, error };
}

function describeKernelError(json: string): string {
    try {
        const e = JSON.parse(json) as { name?: string; message?: string };
        return [e.name, e.message].filter(Boolean).join(': ') || json;
    } catch {
        return json;
    }
}

/** The last printed line that looks like a connection file (other output may precede it). */
export function connectionFileIn(stdout: string): string | undefined {
    const lines = stdout.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    for (let i = lines.length - 1; i >= 0; i--) {
        if (/\.json$/i.test(lines[i])) return lines[i];
    }
    return undefined;
}

function fromError(err: unknown): NotebookKernelLookup {
    const e = err as { name?: unknown; message?: unknown } | undefined;
    if (e?.name === ACCESS_REVOKED || /access to jupyter kernel has been revoked/i.test(String(e?.message ?? ''))) {
        return { kind: 'denied' };
    }
    return { kind: 'failed', detail: err instanceof Error ? err.message : String(err) };
}

/** How to attach without the Jupyter extension's help. */
export function manualHint(): string {
    return `Run \`${MANUAL_CODE}\` in a notebook cell and paste the path it prints, or pick that file from the attach list.`;
}

/** The user-facing message for a lookup that found no usable connection file (undefined for found/cancelled). */
export function lookupMessage(result: NotebookKernelLookup, notebookName: string): string | undefined {
    switch (result.kind) {
        case 'found':
        case 'cancelled':
            return undefined;
        case 'no-jupyter':
            return `TLens: attaching to ${notebookName}'s kernel in one step needs the Jupyter extension (${JUPYTER_EXTENSION_ID}). ${manualHint()}`;
        case 'no-kernel':
            return `TLens: ${notebookName} has no kernel that the Jupyter extension shares yet. Run a cell in the notebook first (the Jupyter extension only shares a kernel that has executed code), then attach again.`;
        case 'not-python':
            return `TLens: ${notebookName}'s kernel runs ${result.language}, not Python; sweeps need a Python kernel with TransformerLens.`;
        case 'denied':
            return `TLens: the Jupyter extension did not give TLens access to ${notebookName}'s kernel. Allow it with "Jupyter: Manage Access To Jupyter Kernels", or attach by hand: ${manualHint()}`;
        case 'timeout':
            return `TLens: ${notebookName}'s kernel did not answer within ${result.seconds} s; a cell may still be running (TLens's request waits behind it). Try again when the kernel is idle.`;
        case 'not-local':
            return `TLens: ${notebookName}'s kernel uses ${result.connectionFile}, which is not on this machine (a remote Jupyter server?). TLens attaches to local kernels only; start one with "TLens: Start Kernel".`;
        case 'failed':
            return `TLens: could not read ${notebookName}'s kernel connection file: ${result.detail}. ${manualHint()}`;
    }
}
