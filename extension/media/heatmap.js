// Heatmap webview: the value of the cell under the mouse, the Save PNG / Open JSON buttons, and the
// experiment's past runs (pick one to show it) with "Compare with previous".
// `panels` (from the server) give each cell grid's pixel box in the PNG and its values and labels.
(function () {
    const vscode = acquireVsCodeApi();
    const panels = JSON.parse(document.getElementById('sweep-data').textContent).panels;
    const img = document.getElementById('heatmap');
    const readout = document.getElementById('readout');
    const idle = panels.length
        ? 'Move the mouse over the heatmap to read a cell.'
        : 'This server version sends no cell geometry; the values are in the JSON file.';
    readout.textContent = idle;

    function format(v) {
        if (v === null || v === undefined) return 'not run';
        return Number.isInteger(v) ? String(v) : v.toPrecision(4);
    }

    // The panel and cell under a point given in PNG pixels, or undefined.
    function cellAt(px, py) {
        for (const p of panels) {
            const fx = (px - p.x) / p.width;
            const fy = (py - p.y) / p.height;
            const rows = p.values.length;
            const cols = rows ? p.values[0].length : 0;
            if (fx >= 0 && fx < 1 && fy >= 0 && fy < 1 && rows && cols) {
                return { panel: p, row: Math.floor(fy * rows), col: Math.floor(fx * cols) };
            }
        }
        return undefined;
    }

    img.addEventListener('mousemove', function (event) {
        const rect = img.getBoundingClientRect();
        const scale = img.naturalWidth / rect.width;
        const hit = cellAt((event.clientX - rect.left) * scale, (event.clientY - rect.top) * scale);
        if (!hit) {
            readout.textContent = idle;
            return;
        }
        const p = hit.panel;
        const row = p.rowLabels[hit.row] ?? String(hit.row);
        const col = p.colLabels[hit.col] ?? String(hit.col);
        const where = (p.label ? p.label + ' \u00b7 ' : '') + row + ' \u00d7 ' + col;
        readout.textContent = where + ' = ' + format(p.values[hit.row][hit.col]);
    });
    img.addEventListener('mouseleave', function () {
        readout.textContent = idle;
    });
    document.getElementById('save').addEventListener('click', function () {
        vscode.postMessage({ type: 'save' });
    });
    const runs = document.getElementById('runs');
    if (runs) {
        runs.addEventListener('change', function () {
            vscode.postMessage({ type: 'openRun', jsonPath: runs.value });
        });
    }
    const compare = document.getElementById('compare');
    if (compare) {
        compare.addEventListener('click', function () {
            vscode.postMessage({ type: 'compare' });
        });
    }
    const openJson = document.getElementById('open-json');
    if (openJson) {
        openJson.addEventListener('click', function () {
            vscode.postMessage({ type: 'openJson' });
        });
    }
})();
