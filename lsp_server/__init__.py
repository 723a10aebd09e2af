"""tlens-lsp: a language server for TransformerLens research code."""

__version__ = "0.1.0"
# Where reports (SARIF's informationUri, each rule's helpUri) send readers.
__homepage__ = "https://github.com/tlens/tlens-lsp"
