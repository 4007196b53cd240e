"""The pure core: no I/O, no Luigi, no SQL, no LightGBM; functions of frames and arrays."""
