"""The stages of the chain, one module each: load, call the core, write."""
