// Heatmap webview: cell readout under the mouse and the Save PNG / Open JSON buttons.
// The cell grid fills `plotBox` (pixels of the PNG) when the server sends one, else the whole image.
(function () {
    const vscode = acquireVsCodeApi();
    const data = JSON.parse(document.getElementById('sweep-data').textContent);
    const img = document.getElementById('heatmap');
    const readout = document.getElementById('readout');
    const rows = data.values.length;
    const cols = rows && Array.isArray(data.values[0]) ? data.values[0].length : 0;

    function format(v) {
        if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
        if (Array.isArray(v)) return '[' + v.map(format).join(', ') + ']';
        return String(v);
    }

    function cellAt(event) {
        const rect = img.getBoundingClientRect();
        const scale = img.naturalWidth ? rect.width / img.naturalWidth : 1;
        const box = data.plotBox || { x: 0, y: 0, width: img.naturalWidth, height: img.naturalHeight };
        const fx = ((event.clientX - rect.left) / scale - box.x) / box.width;
        const fy = ((event.clientY - rect.top) / scale - box.y) / box.height;
        if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1) return undefined;
        return { row: Math.floor(fy * rows), col: Math.floor(fx * cols) };
    }

    img.addEventListener('mousemove', function (event) {
        const cell = rows && cols ? cellAt(event) : undefined;
        if (!cell) {
            readout.textContent = '\u00a0';
            return;
        }
        const row = data.rowLabels[cell.row] ?? String(cell.row);
        const col = data.colLabels[cell.col] ?? String(cell.col);
        readout.textContent = row + ' \u00d7 ' + col + ' = ' + format(data.values[cell.row][cell.col]);
    });
    img.addEventListener('mouseleave', function () {
        readout.textContent = '\u00a0';
    });
    document.getElementById('save').addEventListener('click', function () {
        vscode.postMessage({ type: 'save' });
    });
    const openJson = document.getElementById('open-json');
    if (openJson) {
        openJson.addEventListener('click', function () {
            vscode.postMessage({ type: 'openJson' });
        });
    }
})();
