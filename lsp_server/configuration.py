"""Which settings apply where: the ones the editor pushes (initialization options and
``workspace/didChangeConfiguration``) and each workspace folder's own, pulled with
``workspace/configuration`` where the editor supports it (a multi-root workspace can give each
folder its own interpreter, TransformerLens version or severities). Resolved once per change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .editor_modules import local_path
from .settings import Settings, parse_settings

if TYPE_CHECKING:
    from .server import TlensServer

log = logging.getLogger(__name__)


class Configuration:
    def __init__(self, ls: TlensServer):
        self.ls = ls
        self.pushed = Settings()
        self._folders: list[tuple[Path, Settings]] = []  # deepest folder first

    def for_uri(self, uri: str | None) -> Settings:
        """The settings of the workspace folder holding ``uri`` (a notebook cell: its notebook's)."""
        notebook = self.ls.workspace.get_notebook_document(cell_uri=uri) if uri else None
        path = local_path(notebook.uri if notebook is not None else uri)
        if path is not None:
            for folder, settings in self._folders:
                if path.is_relative_to(folder):
                    return settings
        return self.pushed

    def apply(self, raw: Any, where: str = "") -> Settings:
        """Parse settings the editor sent; each problem logged once, the first one shown."""
        settings, problems = parse_settings(raw)
        for problem in problems:
            self.ls.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=where + problem))
        if problems:
            self.ls.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Warning,
                message=f"tlens: {len(problems)} setting(s) ignored; see the output log. {where}{problems[0]}"))
        return settings

    def push(self, raw: Any) -> None:
        self.pushed = self.apply(raw)

    async def pull_folders(self) -> None:
        """Ask the editor for each workspace folder's ``tlens`` settings (when it can answer)."""
        caps = self.ls.client_capabilities.workspace if self.ls.client_capabilities else None
        folders = list(self.ls.workspace.folders.values())
        if not (caps and caps.configuration and folders):
            return
        try:
            answers = await self.ls.workspace_configuration_async(types.ConfigurationParams(items=[
                types.ConfigurationItem(scope_uri=f.uri, section="tlens") for f in folders]))
        except Exception as e:  # the editor could not answer: the pushed settings apply everywhere
            log.info("workspace/configuration failed: %s", e)
            return
        pulled = []
        for folder, raw in zip(folders, answers or []):
            path = local_path(folder.uri)
            if path is not None and isinstance(raw, dict):
                pulled.append((path, self.apply(raw, f"{folder.name}: ")))
        self._folders = sorted(pulled, key=lambda item: -len(item[0].parts))
