"""konsilium: a private AI over your Obsidian vault, running entirely on your machine."""

__version__ = "0.1.0"
