rule aggregate:
    input:
        run_targets(),
    output:
        runs=report(f"{R}/tables/runs.csv", caption="../report/tables.rst", category="Tables"),
        summary=f"{R}/tables/summary.csv",
        minimum=report(f"{R}/tables/minimum_hsk.md", caption="../report/minimum_hsk.rst", category="Tables"),
        lr_sweep=[f"{R}/tables/lr_sweep.{ext}" for ext in ("csv", "md")],
        tables=[f"{R}/tables/{kind}.{ext}" for kind in ("depth", "length", "width", "joint") for ext in ("csv", "md", "tex")],
    params:
        select_on=STUDY.select_on,
        value=STUDY.report_value,
        results=lambda w, output: os.path.dirname(os.path.dirname(output.runs)),
        out=lambda w, output: os.path.dirname(output.runs),
    conda:
        "../../envs/hskd.yaml"
    log:
        "logs/aggregate.log",
    shell:
        "hskd aggregate --results {params.results} --out {params.out} --select-on {params.select_on}"
        " --value {params.value} > {log} 2>&1"


rule plot:
    input:
        summary=f"{R}/tables/summary.csv",
    output:
        marginal=report(expand(f"{R}/figures/marginal_utility_{{task}}.{{ext}}", task=STUDY.tasks, ext=["pdf", "png"]),
                        caption="../report/marginal_utility.rst", category="Figures"),
        dimensions=report(expand(f"{R}/figures/{{kind}}_{{task}}.{{ext}}", kind=["depth", "length", "width"],
                                 task=STUDY.tasks, ext=["pdf", "png"]),
                          caption="../report/dimension.rst", category="Figures"),
        joint=report(expand(f"{R}/figures/joint_{{task}}.{{ext}}", task=STUDY.tasks, ext=["pdf", "png"]),
                     caption="../report/joint.rst", category="Figures"),
    params:
        out=lambda w, output: os.path.dirname(output.joint[0]),
        tasks=" ".join(STUDY.tasks),
    conda:
        "../../envs/hskd.yaml"
    log:
        "logs/plot.log",
    shell:
        "hskd plot --summary {input.summary} --out {params.out} --tasks {params.tasks} > {log} 2>&1"
