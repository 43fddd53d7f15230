"""hskd: hidden-state knowledge distillation ablations (Liu et al., ACL 2021) as a Snakemake pipeline."""

__version__ = "0.1.0"
