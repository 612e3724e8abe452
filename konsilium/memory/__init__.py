"""Memory: the durable log of every conversation (stdlib only, cheap to import)."""

from .log import DB_NAME, ConversationLog, Exchange, MemoryStoreError, content_text, fold, log_path

__all__ = ["DB_NAME", "ConversationLog", "Exchange", "MemoryStoreError", "content_text", "fold", "log_path"]
