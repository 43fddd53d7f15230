# Not part of `rule all`: `snakemake --cores 2 bench` (at the study's `precision`).
rule bench:
    output:
        json=f"{R}/bench/speed.json",
        csv=f"{R}/tables/speed.csv",
        md=f"{R}/tables/speed.md",
        figure=expand(f"{R}/figures/speedup.{{ext}}", ext=["pdf", "png"]),
    params:
        results=lambda w, output: os.path.dirname(os.path.dirname(output.json)),
        precision=STUDY.precision,
    # every core of the machine (Snakemake lowers it to --cores); not workflow.cores, which is unset and
    # fails with --report or --unlock
    threads: os.cpu_count()
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/bench.log",
    shell:
        "hskd bench --out {params.results:q} --threads {threads} --precision {params.precision:q} --log {log:q}"
