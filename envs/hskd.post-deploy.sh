#!/usr/bin/env bash
# Snakemake runs this in the new conda env (--use-conda), from its working directory: install the hskd of
# this repository into the env, without touching the dependencies envs/hskd.yaml pinned.
set -euo pipefail
if ! grep -qs '^name = "hskd"' pyproject.toml; then
    echo "envs/hskd.post-deploy.sh: run snakemake --use-conda from the hskd repository root ($PWD is not)" >&2
    exit 1
fi
pip install --no-deps -e "$PWD"
