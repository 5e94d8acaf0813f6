"""prift.models: model and tokenizer loading (hub id, local path, embedded SmolLM2), tiny test models, run records."""
