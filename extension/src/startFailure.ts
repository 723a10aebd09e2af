// Tells the user why the server did not start and offers the fix.
import * as vscode from 'vscode';
import { logChannel } from './log';
import { ClientCommand } from './protocol';
import { diagnoseInterpreter, Interpreter, StartProblem } from './python';

const INSTALL = 'Install tlens-lsp';
const SET_INTERPRETER = 'Set tlens.interpreter';
const SHOW_LOG = 'Show Log';

/** Says why `interpreter` cannot run the server (`problem` from diagnoseInterpreter, else asked now). */
export async function reportStartFailure(interpreter: Interpreter, problem?: StartProblem): Promise<void> {
    problem ??= await diagnoseInterpreter(interpreter.command);
    const where =
        interpreter.source === 'setting'
            ? 'from the tlens.interpreter setting'
            : interpreter.source === 'python-extension'
              ? "the Python extension's active environment"
              : 'found on PATH';
    let message: string;
    let actions: string[];
    switch (problem.kind) {
        case 'python-missing':
            message = `TLens: the language server needs Python, but ${problem.detail} (${where}). Set tlens.interpreter to a Python with tlens-lsp installed.`;
            actions = [SET_INTERPRETER, SHOW_LOG];
            break;
        case 'server-not-installed':
            message = `TLens: ${problem.detail} (${where}). Install it there with "${interpreter.command} -m pip install tlens-lsp", or set tlens.interpreter to a Python that has it.`;
            actions = [INSTALL, SET_INTERPRETER, SHOW_LOG];
            break;
        default:
            message = `TLens: the language server (${interpreter.command} -m lsp_server serve) exited during start-up. ${problem.kind === 'ok' ? '' : problem.detail + ' '}See the TLens output for its error.`;
            actions = [SHOW_LOG, SET_INTERPRETER];
    }
    const choice = await vscode.window.showErrorMessage(message, ...actions);
    if (choice === INSTALL) {
        const terminal = vscode.window.createTerminal('TLens: install tlens-lsp');
        terminal.show();
        terminal.sendText(`${shellQuote(interpreter.command)} -m pip install tlens-lsp`);
        const restart = await vscode.window.showInformationMessage(
            'TLens: when the install in the terminal has finished, restart the language server.',
            'Restart Server',
        );
        if (restart) {
            await vscode.commands.executeCommand(ClientCommand.restartServer);
        }
    } else if (choice === SET_INTERPRETER) {
        await vscode.commands.executeCommand('workbench.action.openSettings', 'tlens.interpreter');
    } else if (choice === SHOW_LOG) {
        logChannel().show();
    }
}

function shellQuote(arg: string): string {
    return /^[\w./:\\-]+$/.test(arg) ? arg : `"${arg.replace(/"/g, '\\"')}"`;
}
