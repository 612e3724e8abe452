"""Reading an Obsidian vault: notes, links, conversations, chat exports."""
