// The wire contract with the Python server (`python -m lsp_server serve`), in one place. It mirrors
// lsp_server/protocol.py; tests/test_protocol_contract.py checks that the two agree.
// Command-id scheme: the server owns `tlens.*` (vscode-languageclient registers those ids as VS Code
// commands when the server advertises them); the extension's palette commands are `tlens.client.*`.

/** Commands the server registers (workspace/executeCommand). */
export const ServerCommand = {
    attachKernel: 'tlens.attachKernel', // [{connectionFile} | {kernelId} (a kernel of the Jupyter gateway)]
    startKernel: 'tlens.startKernel', // [{interpreter?}]
    interruptKernel: 'tlens.interruptKernel',
    kernelStatus: 'tlens.kernelStatus', // -> KernelStatus
    runSweep: 'tlens.runSweep', // [{uri, line, kind?}]; "Run patch sweep" code actions carry it
    resetKernelHooks: 'tlens.resetKernelHooks',
    listConnectionFiles: 'tlens.listConnectionFiles', // -> string[] (optional; merged into the attach picker)
    listGatewayKernels: 'tlens.listGatewayKernels', // -> GatewayKernels (the attach picker offers them)
    liveState: 'tlens.liveState', // -> what the attached kernel holds
    refreshLiveState: 'tlens.refreshLiveState', // [{timeout?}] -> the same, asked again
    serverInfo: 'tlens.serverInfo', // -> versions; whether torch / transformer_lens were imported
    compareSweeps: 'tlens.compareSweeps', // [{uri, line}] -> latest − previous run (also sent as tlens/sweepResult)
    showSweep: 'tlens.showSweep', // [{uri, line, jsonPath}] -> that saved run of the experiment
    livePicture: 'tlens.livePicture', // [{id}] -> the hover's live picture, large (a SweepResult of kind "picture")
} as const;

/** Server commands that run code (a kernel or gateway, a sweep and its setup code, a live picture): refused in Restricted Mode. */
export const RUNS_CODE: readonly string[] = [
    ServerCommand.attachKernel,
    ServerCommand.interruptKernel,
    ServerCommand.listGatewayKernels,
    ServerCommand.livePicture,
    ServerCommand.refreshLiveState,
    ServerCommand.resetKernelHooks,
    ServerCommand.runSweep,
    ServerCommand.startKernel,
];

/** `initializationOptions` field: false in an untrusted workspace (the server then runs no code). */
export const WORKSPACE_TRUSTED = 'workspaceTrusted';

/** Commands the extension contributes to the palette. */
export const ClientCommand = {
    attachKernel: 'tlens.client.attachKernel',
    startKernel: 'tlens.client.startKernel',
    interruptKernel: 'tlens.client.interruptKernel',
    resetKernelHooks: 'tlens.client.resetKernelHooks',
    runSweep: 'tlens.client.runSweep',
    showHeatmap: 'tlens.client.showHeatmap',
    openPicture: 'tlens.client.openPicture', // [{id}]: the "Open in panel" link of a live-picture hover
    restartServer: 'tlens.client.restartServer',
} as const;

/** Server -> client notifications. */
export const Notification = {
    kernelStatus: 'tlens/kernelStatus',
    sweepResult: 'tlens/sweepResult',
} as const;

export type KernelState = 'none' | 'starting' | 'idle' | 'busy' | 'dead';

export interface KernelStatus {
    state: KernelState;
    connectionFile?: string | null;
    /** Started by tlens (shut down with the server) rather than attached. */
    owned?: boolean;
    /** The Jupyter gateway's URL (never with its token) for a kernel that runs there, and its kernel id. */
    gateway?: string | null;
    kernelId?: string | null;
    detail?: string | null;
    progress?: { done: number; total: number };
}

/** A running kernel of the Jupyter gateway (`tlens.listGatewayKernels`). */
export interface GatewayKernel {
    id: string;
    name?: string | null;
    executionState?: string | null;
    lastActivity?: string | null;
    connections?: number | null;
}

/** The gateway's kernels; `gateway` null: none is set; `error`: it could not list them. */
export interface GatewayKernels {
    gateway?: string | null;
    kernels?: GatewayKernel[];
    error?: string;
}

/** Nested number arrays: 2-D for [layer, pos]-style sweeps, deeper for 3-D kinds; null = cell not run. */
export type SweepValues = number | null | SweepValues[];

export interface SweepResult {
    uri: string;
    line: number;
    kind: string;
    title: string;
    /** Base64 PNG (no data: prefix). */
    png: string;
    values: SweepValues[];
    rowLabels: string[];
    colLabels: string[];
    /** The panels of 3-D kinds (block: resid / attn / MLP), and the head axis where there is one. */
    panelLabels?: string[] | null;
    headLabels?: string[] | null;
    pngPath?: string;
    jsonPath?: string;
    partial: boolean;
    metric: string;
    summary?: string;
    cellsDone?: number;
    cellsTotal?: number;
    elapsed?: number;
    /** Where each cell grid lies in the PNG, for the value under the mouse (absent: no readout). */
    panels?: HeatmapPanelGeometry[];
    /** Past runs of this experiment, newest first (the panel switches between them). */
    history?: SweepRun[];
}

export interface SweepRun {
    jsonPath: string;
    label: string;
    kind: string;
    current: boolean;
}

/** One cell grid of the PNG: pixel box of the cells only (no labels), uniform rows and columns. */
export interface HeatmapPanelGeometry {
    label?: string;
    x: number;
    y: number;
    width: number;
    height: number;
    values: (number | null)[][];
    rowLabels: string[];
    colLabels: string[];
}

export interface RunSweepArgs {
    uri: string;
    line: number;
    kind?: string;
}

/** The sweep kinds of `tlens.sweep.defaultKind`: the list in lsp_server/sweeps/kinds.py (a test keeps them equal). */
export const SWEEP_KINDS = [
    'resid_pre',
    'resid_mid',
    'resid_post',
    'attn_out',
    'mlp_out',
    'heads',
    'heads_by_pos',
    'block',
    'attribution',
] as const;
