"""tlens-lsp: a language server for TransformerLens research code."""

__version__ = "0.1.0"
