"""Tools beside the chain: the synthetic world generator and the M5 importer."""
