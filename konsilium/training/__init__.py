"""Making roles: training datasets from the vault, the conversation log and JSONL files; LoRA training with PEFT;
perplexity before and after. Stands apart from serving: it loads its own copy of the base model."""
