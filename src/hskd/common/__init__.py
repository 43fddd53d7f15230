"""Layer 0, torch-free: GLUE task readers, metrics, atomic files and provenance, model-name resolution."""
