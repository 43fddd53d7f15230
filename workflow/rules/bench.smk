# Not part of `rule all`: `snakemake --cores 2 bench`.
rule bench:
    output:
        json=f"{R}/bench/speed.json",
        csv=f"{R}/tables/speed.csv",
        md=f"{R}/tables/speed.md",
        figure=expand(f"{R}/figures/speedup.{{ext}}", ext=["pdf", "png"]),
    threads: workflow.cores
    log:
        "logs/bench.log",
    shell:
        "{HSKD} bench --out {R} --threads {threads} > {log} 2>&1"
