// Unit tests of the Restricted Mode logic (plain `node --test`, no VS Code): which commands are refused,
// what the refusal says, and which interpreters count as the workspace's own programs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServerCommand } from '../src/protocol';
import { insideFolders, MANAGE_TRUST_LABEL, restrictedMessage, runsCode } from '../src/trust';

test('commands that start or talk to a kernel or run a sweep are refused; status and info are not', () => {
    for (const command of [ServerCommand.attachKernel, ServerCommand.startKernel, ServerCommand.runSweep,
        ServerCommand.interruptKernel, ServerCommand.resetKernelHooks, ServerCommand.refreshLiveState]) {
        assert.equal(runsCode(command), true, command);
    }
    for (const command of [ServerCommand.kernelStatus, ServerCommand.serverInfo, ServerCommand.liveState,
        ServerCommand.listConnectionFiles, 'tlens.client.showHeatmap']) {
        assert.equal(runsCode(command), false, command);
    }
});

test('the refusal says what, why, and how to leave Restricted Mode', () => {
    const message = restrictedMessage('Starting a kernel');
    assert.match(message, /^TLens: Starting a kernel is unavailable in Restricted Mode: this workspace is not trusted/);
    assert.ok(message.includes(MANAGE_TRUST_LABEL) && MANAGE_TRUST_LABEL === 'Manage Workspace Trust');
    assert.match(message, /hovers and diagnostics still work/);
});

test('an interpreter inside a workspace folder is the workspace\'s program', () => {
    const folders = ['/home/u/repo', '/home/u/other'];
    assert.equal(insideFolders('/home/u/repo/.venv/bin/python', folders), true);
    assert.equal(insideFolders('/home/u/other/env/python3', folders), true);
    assert.equal(insideFolders('.venv/bin/python', folders), true, 'relative: to the first folder');
    assert.equal(insideFolders('/home/u/repo/../repo/x/python', folders), true, 'normalised');
});

test('interpreters outside the workspace, and bare names on PATH, may run', () => {
    const folders = ['/home/u/repo'];
    assert.equal(insideFolders('/usr/bin/python3', folders), false);
    assert.equal(insideFolders('/home/u/repo-venv/bin/python', folders), false, 'a sibling folder with the same prefix');
    assert.equal(insideFolders('/home/u/repo/../venv/bin/python', folders), false);
    assert.equal(insideFolders('python3', folders), false);
    assert.equal(insideFolders('/usr/bin/python3', []), false);
});
