// The Jupyter gateway's running kernels as entries of "TLens: Attach to Jupyter Kernel…" (no VS Code API here,
// so `node --test` checks it). The server lists them (`tlens.listGatewayKernels`); the token never reaches here.
import type { GatewayKernel, GatewayKernels } from './protocol';

export interface GatewayPick {
    label: string;
    description?: string;
    detail?: string;
    /** Absent on the entry that only reports why the gateway could not list its kernels. */
    kernelId?: string;
}

/** `GatewayKernels` from whatever the server answered (an older server, or an unexpected shape: none). */
export function gatewayKernelsOf(answer: unknown): GatewayKernels {
    if (!answer || typeof answer !== 'object') return {};
    const a = answer as GatewayKernels;
    const kernels = Array.isArray(a.kernels) ? a.kernels.filter((k) => k && typeof k.id === 'string') : [];
    return { gateway: typeof a.gateway === 'string' ? a.gateway : null, kernels, error: typeof a.error === 'string' ? a.error : undefined };
}

function describe(k: GatewayKernel, now: number): string {
    const parts = [k.executionState ?? 'unknown state'];
    if (typeof k.connections === 'number') parts.push(`${k.connections} connection${k.connections === 1 ? '' : 's'}`);
    const last = k.lastActivity ? Date.parse(k.lastActivity) : NaN;
    if (!Number.isNaN(last)) parts.push(`active ${agoText(now - last)}`);
    return parts.join(' · ');
}

export function agoText(ms: number): string {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
}

/** One entry per running kernel (newest activity first), or one that says why there are none. */
export function gatewayPicks(listed: GatewayKernels, now = Date.now()): GatewayPick[] {
    if (!listed.gateway) return [];
    if (listed.error) {
        return [{ label: '$(warning) The Jupyter gateway did not list its kernels', detail: listed.error }];
    }
    const kernels = [...(listed.kernels ?? [])].sort(
        (a, b) => (Date.parse(b.lastActivity ?? '') || 0) - (Date.parse(a.lastActivity ?? '') || 0),
    );
    return kernels.map((k) => ({
        label: `$(remote) ${k.name ?? 'kernel'} ${k.id.slice(0, 8)}`,
        description: describe(k, now),
        detail: `${k.id} on ${listed.gateway}`,
        kernelId: k.id,
    }));
}
