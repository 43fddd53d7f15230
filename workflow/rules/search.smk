# grid.search adaptive: the minimum-HSK search in rounds. Round 0 reads the baselines, the joint cells and each
# sequence's first cell at n_min seeds; each round's decision names the runs the next one needs, until every
# sequence is decided (README: Adaptive minimum-HSK search). Every run it asks for is a grid run (same paths).
checkpoint search_round:
    input:
        runs=search_round_inputs,
    output:
        f"{R}/search/round={{round}}.json",
    params:
        args=lambda w, input, output: args_file(
            "--spec", as_json(search_spec(STUDY)), "--results", R, "--out", output[0], "--runs", *input.runs
        ),
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/search/round={{round}}.log",
    localrule: True  # reads metrics.json files: no cluster job
    shell:
        "hskd search-round @{params.args:q} --log {log:q}"


rule search_tables:
    input:
        rounds=search_rounds,
    output:
        md=report(f"{R}/tables/search.md", caption="../report/search.rst", category="Tables"),
        csv=f"{R}/tables/search.csv",
        figure=report(multiext(f"{R}/figures/search", ".pdf", ".png"), caption="../report/search_figure.rst",
                      category="Figures"),
    params:
        out=lambda w, output: os.path.dirname(output.md),
        figures=lambda w, output: os.path.dirname(output.figure[0]),
        n_max=STUDY.grid.adaptive.n_max,
        margin=STUDY.report.margin,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/search_tables.log",
    localrule: True
    shell:
        "hskd search-tables --rounds {input.rounds:q} --n-max {params.n_max} --margin {params.margin}"
        " --out {params.out:q} --figures {params.figures:q} --log {log:q}"
