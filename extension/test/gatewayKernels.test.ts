// Unit tests of the attach picker's gateway entries (plain `node --test`, no VS Code).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayKernelsOf, gatewayPicks } from '../src/gatewayKernels';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const URL = 'https://gpu-host:8888';

test('running kernels become entries, most recently active first, each naming its id and state', () => {
    const picks = gatewayPicks(
        gatewayKernelsOf({
            gateway: URL,
            kernels: [
                { id: 'aaaaaaaa-1111', name: 'python3', executionState: 'idle', lastActivity: '2026-12-05T11:00:00Z', connections: 0 },
                { id: 'bbbbbbbb-2222', name: 'python3', executionState: 'busy', lastActivity: '2026-12-05T11:59:30Z', connections: 1 },
            ],
        }),
        NOW,
    );
    assert.deepEqual(
        picks.map((p) => [p.label, p.description, p.kernelId]),
        [
            ['$(remote) python3 bbbbbbbb', 'busy · 1 connection · active 30 s ago', 'bbbbbbbb-2222'],
            ['$(remote) python3 aaaaaaaa', 'idle · 0 connections · active 1 h ago', 'aaaaaaaa-1111'],
        ],
    );
    assert.equal(picks[0].detail, `bbbbbbbb-2222 on ${URL}`);
});

test('a gateway that refused shows why, with nothing to attach to', () => {
    const picks = gatewayPicks(gatewayKernelsOf({ gateway: URL, kernels: [], error: 'refused the token (HTTP 401)' }));
    assert.equal(picks.length, 1);
    assert.equal(picks[0].kernelId, undefined);
    assert.match(picks[0].detail ?? '', /HTTP 401/);
});

test('no gateway set, an older server or a malformed answer: no entries', () => {
    assert.deepEqual(gatewayPicks(gatewayKernelsOf({ gateway: null, kernels: [] })), []);
    assert.deepEqual(gatewayPicks(gatewayKernelsOf(undefined)), []);
    assert.deepEqual(gatewayPicks(gatewayKernelsOf({ gateway: URL, kernels: [{ name: 'no id' }, null] })), []);
});
