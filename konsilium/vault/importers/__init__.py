"""Chat-export importers: ChatGPT and Claude exports -> nexus-ai-chat-importer notes in the vault."""

from konsilium.vault.importers.chatgpt import import_chatgpt
from konsilium.vault.importers.claude import import_claude
from konsilium.vault.importers.nexus_writer import ImportInputError, ImportResult

__all__ = ["ImportInputError", "ImportResult", "import_chatgpt", "import_claude"]
