"""Layer 1, torch-free: what Snakemake imports to plan a study (cells, strategies, protocol, config, grid, paths)."""
