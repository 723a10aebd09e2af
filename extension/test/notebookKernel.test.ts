// Unit tests of the notebook-kernel lookup against a fake Jupyter kernels API (plain `node --test`, no VS Code).
// Run: npm run test:unit (bundles with esbuild into build/unit-tests/, then node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kernel, Kernels } from '@vscode/jupyter-extension';
import type { CancellationToken, Uri } from 'vscode';
import {
    CONNECTION_FILE_CODE,
    connectionFileIn,
    findNotebookConnectionFile,
    lookupMessage,
    MANUAL_CODE,
    NotebookKernelLookup,
} from '../src/notebookKernel';

const NOTEBOOK = { toString: () => 'file:///work/ioi.ipynb', path: '/work/ioi.ipynb' } as unknown as Uri;
const FILE = '/tmp/kernel-v2-1234abcd.json';
const encoder = new TextEncoder();
const STDOUT = 'application/vnd.code.notebook.stdout';
const ERROR = 'application/vnd.code.notebook.error';

type Item = { mime: string; data: Uint8Array };
const stdout = (text: string, mime = STDOUT): Item => ({ mime, data: encoder.encode(text) });

function token(cancelled = false): CancellationToken & { cancel(): void } {
    const t = {
        isCancellationRequested: cancelled,
        onCancellationRequested: () => ({ dispose() {} }),
        cancel() {
            t.isCancellationRequested = true;
        },
    };
    return t as unknown as CancellationToken & { cancel(): void };
}

/** A fake Jupyter kernel: `run` produces the outputs (or throws) for each executeCode call. */
function fakeKernel(run: (code: string, token: CancellationToken) => AsyncIterable<{ items: Item[] }>, language = 'python') {
    const calls: { code: string; token: CancellationToken }[] = [];
    const kernel = {
        status: 'idle',
        language,
        onDidChangeStatus: () => ({ dispose() {} }),
        executeCode(code: string, t: CancellationToken) {
            calls.push({ code, token: t });
            return run(code, t);
        },
    } as unknown as Kernel;
    return { kernel, calls };
}

function kernelsApi(kernel: Kernel | undefined, seen: Uri[] = []): Pick<Kernels, 'getKernel'> {
    return {
        getKernel: async (uri: Uri) => {
            seen.push(uri);
            return kernel;
        },
    };
}

async function* outputs(...batches: Item[][]) {
    for (const items of batches) yield { items };
}

const everyFileExists = { exists: () => true };

test('finds the connection file the kernel prints, running the silent code with the given token', async () => {
    const { kernel, calls } = fakeKernel(() => outputs([stdout(FILE + '\n')]));
    const seen: Uri[] = [];
    const t = token();
    const result = await findNotebookConnectionFile(kernelsApi(kernel, seen), NOTEBOOK, t, everyFileExists);
    assert.deepEqual(result, { kind: 'found', connectionFile: FILE });
    assert.deepEqual(seen, [NOTEBOOK]);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].code, CONNECTION_FILE_CODE);
    assert.equal(calls[0].token, t);
    // The code binds no name in the user's namespace (unlike `import ipykernel`).
    assert.doesNotMatch(CONNECTION_FILE_CODE, /^\s*import\b/);
});

test('joins stdout split over several outputs and ignores other output before the path', async () => {
    const half = FILE.length / 2;
    const { kernel } = fakeKernel(() =>
        outputs([stdout('warming up\n')], [{ mime: 'text/html', data: encoder.encode('<b>x</b>') }], [stdout(FILE.slice(0, half))], [stdout(FILE.slice(half) + '\n')]),
    );
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'found', connectionFile: FILE });
});

test('accepts the stream mime named in the API documentation', async () => {
    const { kernel } = fakeKernel(() => outputs([stdout(FILE, 'application/x.notebook.stream.stdout')]));
    assert.deepEqual(await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), everyFileExists), {
        kind: 'found',
        connectionFile: FILE,
    });
});

test('without the Jupyter extension: no-jupyter, and the message says how to attach by hand', async () => {
    const result = await findNotebookConnectionFile(undefined, NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'no-jupyter' });
    const message = lookupMessage(result, 'ioi.ipynb')!;
    assert.match(message, /Jupyter extension/);
    assert.ok(message.includes(MANUAL_CODE), message);
    assert.match(message, /paste the path/);
});

test('a notebook that has not executed a cell has no shared kernel: says to run a cell first', async () => {
    const result = await findNotebookConnectionFile(kernelsApi(undefined), NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'no-kernel' });
    assert.match(lookupMessage(result, 'ioi.ipynb')!, /Run a cell in the notebook first/);
});

test('a non-Python kernel is refused without running anything', async () => {
    const { kernel, calls } = fakeKernel(() => outputs([stdout(FILE)]), 'r');
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'not-python', language: 'r' });
    assert.equal(calls.length, 0);
    assert.match(lookupMessage(result, 'ioi.ipynb')!, /runs r, not Python/);
});

test('denied consent (apiAccessRevoked) names the command that grants access', async () => {
    const { kernel } = fakeKernel(() => {
        const err = new Error('Access to Jupyter Kernel has been revoked');
        err.name = 'vscode.jupyter.apiAccessRevoked';
        return (async function* () {
            throw err;
        })();
    });
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'denied' });
    const message = lookupMessage(result, 'ioi.ipynb')!;
    assert.match(message, /Jupyter: Manage Access To Jupyter Kernels/);
    assert.ok(message.includes(MANUAL_CODE));
});

test('an error in the kernel (no ipykernel) is reported with its name and message', async () => {
    const error = { name: 'ModuleNotFoundError', message: "No module named 'ipykernel'", stack: '...' };
    const { kernel } = fakeKernel(() => outputs([{ mime: ERROR, data: encoder.encode(JSON.stringify(error)) }]));
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'failed', detail: "ModuleNotFoundError: No module named 'ipykernel'" });
    assert.match(lookupMessage(result, 'ioi.ipynb')!, /could not read ioi\.ipynb's kernel connection file: ModuleNotFoundError/);
});

test('output without a connection file is a failure that quotes it', async () => {
    const { kernel } = fakeKernel(() => outputs([stdout('None\n')]));
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'failed', detail: 'the kernel printed "None", not a connection file' });
    const silent = fakeKernel(() => outputs());
    assert.deepEqual(await findNotebookConnectionFile(kernelsApi(silent.kernel), NOTEBOOK, token(), everyFileExists), {
        kind: 'failed',
        detail: 'the kernel printed nothing',
    });
});

test('getKernel throwing is a failure, not a crash', async () => {
    const api = { getKernel: async () => Promise.reject(new Error('kernel provider exploded')) };
    const result = await findNotebookConnectionFile(api, NOTEBOOK, token(), everyFileExists);
    assert.deepEqual(result, { kind: 'failed', detail: 'kernel provider exploded' });
});

test('a connection file that is not on this machine (remote server) is not attached', async () => {
    const { kernel } = fakeKernel(() => outputs([stdout(FILE)]));
    const checked: string[] = [];
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), {
        exists: (f) => (checked.push(f), false),
    });
    assert.deepEqual(result, { kind: 'not-local', connectionFile: FILE });
    assert.deepEqual(checked, [FILE]);
    assert.match(lookupMessage(result, 'ioi.ipynb')!, /not on this machine/);
});

test('cancelling while the code runs gives cancelled and no message', async () => {
    const t = token();
    const { kernel } = fakeKernel((_code, tok) =>
        (async function* () {
            (tok as unknown as { cancel(): void }).cancel(); // the user pressed Cancel
            throw new Error('Canceled');
        })(),
    );
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, t, everyFileExists);
    assert.deepEqual(result, { kind: 'cancelled' });
    assert.equal(lookupMessage(result, 'ioi.ipynb'), undefined);
});

test('a kernel busy with a long cell times out with a message instead of hanging', async () => {
    const { kernel } = fakeKernel(() =>
        (async function* () {
            await new Promise((resolve) => setTimeout(resolve, 500)); // queued behind the user's cell
            yield { items: [stdout(FILE)] };
        })(),
    );
    const started = Date.now();
    const result = await findNotebookConnectionFile(kernelsApi(kernel), NOTEBOOK, token(), { exists: () => true, timeoutMs: 50 });
    assert.ok(Date.now() - started < 1_000, 'returned at the timeout');
    assert.equal(result.kind, 'timeout');
    assert.match(lookupMessage(result, 'ioi.ipynb')!, /did not answer/);
});

test('connectionFileIn takes the last .json line', () => {
    assert.equal(connectionFileIn('a\n/x/kernel-1.json\r\n/y/kernel-2.json\n\n'), '/y/kernel-2.json');
    assert.equal(connectionFileIn('C:\\Users\\me\\AppData\\Roaming\\jupyter\\runtime\\kernel-9.json'), 'C:\\Users\\me\\AppData\\Roaming\\jupyter\\runtime\\kernel-9.json');
    assert.equal(connectionFileIn('nothing here'), undefined);
});

test('every failure kind has a message that says what to do', () => {
    const failures: NotebookKernelLookup[] = [
        { kind: 'no-jupyter' },
        { kind: 'no-kernel' },
        { kind: 'not-python', language: 'julia' },
        { kind: 'denied' },
        { kind: 'timeout', seconds: 30 },
        { kind: 'not-local', connectionFile: FILE },
        { kind: 'failed', detail: 'boom' },
    ];
    for (const f of failures) {
        const m = lookupMessage(f, 'ioi.ipynb');
        assert.ok(m && m.startsWith('TLens: ') && m.includes('ioi.ipynb'), `${f.kind}: ${m}`);
    }
    assert.equal(lookupMessage({ kind: 'found', connectionFile: FILE }, 'ioi.ipynb'), undefined);
});
