# The runs this config asks for, as a file: the aggregate rule reads exactly these, never a leftover of an
# earlier config (a file, because the paper grid's paths overflow one shell argument).
rule run_list:
    input:
        search=search_result,  # under grid.search adaptive: its last round, which names the runs
    output:
        f"{R}/tables/run_list.txt",
    params:
        runs=lambda w: final_runs(search_result(w)),
    log:
        f"{R}/logs/run_list.log",
    localrule: True
    run:
        write_run_list(params.runs, output[0], log[0])


# The effective config, each value with the layer it came from (what `hskd config` prints for the same call),
# without the values whose change reruns no job (threads, checkpoint_minutes, ...: they would rerun this one);
# and each task's protocol against the paper's code (what `hskd protocol` prints).
rule study_config:
    output:
        config=report(f"{R}/tables/config.txt", caption="../report/config.rst", category="Study"),
        protocol=report(f"{R}/tables/protocol.txt", caption="../report/protocol.rst", category="Study"),
    params:
        config=format_rows(effective_rows(config, CONFIG_ORIGINS, RUN_ENVIRONMENT_KEYS), CONFIG_LAYERS),
        protocol=format_recipe(STUDY),
    log:
        f"{R}/logs/study_config.log",
    localrule: True
    run:
        write_text(params.protocol, output.protocol)
        write_text_logged(params.config, output.config, log[0], f"wrote {output.protocol} and {output.config}")


# What the study will cost, from the config alone (what `hskd plan` prints with the assumed throughput; pass it
# `--bench` for a measured one): jobs, store bytes, teacher passes, device-hours.
rule plan:
    output:
        text=report(f"{R}/tables/plan.txt", caption="../report/plan.rst", category="Study"),
        json=f"{R}/tables/plan.json",
    params:
        plan=lambda wildcards: study_plan(),
    log:
        f"{R}/logs/plan.log",
    localrule: True
    run:
        text, stores = params.plan
        write_json_atomic(stores, output.json)
        write_text_logged(text, output.text, log[0], f"wrote {output.text} and {output.json}")


rule aggregate:
    input:
        runs=lambda w: final_runs(search_result(w)),
        run_list=rules.run_list.output[0],
        teachers=[paths.TEACHER_METRICS.format(results=R, task=task) for task in STUDY.tasks],
    output:
        runs=report(f"{R}/tables/runs.csv", caption="../report/tables.rst", category="Tables"),
        summary=f"{R}/tables/summary.csv",
        references=report(f"{R}/tables/references.csv", caption="../report/references.rst", category="Tables"),
        minimum=report(f"{R}/tables/minimum_hsk.md", caption="../report/minimum_hsk.rst", category="Tables"),
        lr_sweep=report(f"{R}/tables/lr_sweep.md", caption="../report/lr_sweep.rst", category="Tables"),
        lr_sweep_csv=f"{R}/tables/lr_sweep.csv",
        dimension_tables=report([f"{R}/tables/{kind}.md" for kind in ("depth", "length", "width", "joint")],
                                caption="../report/dimension_tables.rst", category="Tables"),
        tables=[f"{R}/tables/{kind}.{ext}" for kind in ("depth", "length", "width", "joint") for ext in ("csv", "tex")],
    params:
        select_on=STUDY.baselines.select_on,
        value=STUDY.report.value,
        margin=STUDY.report.margin,
        alpha=STUDY.report.alpha,
        results=lambda w, output: os.path.dirname(os.path.dirname(output.runs)),
        out=lambda w, output: os.path.dirname(output.runs),
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/aggregate.log",
    localrule: True  # reads metrics.json files and writes tables: no cluster job
    shell:
        "hskd aggregate --results {params.results:q} --runs-from {input.run_list:q} --out {params.out:q}"
        " --select-on {params.select_on:q}"
        " --value {params.value:q} --margin {params.margin:q} --alpha {params.alpha:q} --log {log:q}"


rule curves:
    input:
        runs=rules.aggregate.output.runs,
        summary=rules.aggregate.output.summary,
    output:
        compared=report(expand(f"{R}/figures/curves_{{task}}.{{ext}}", task=STUDY.tasks, ext=["pdf", "png"]),
                        caption="../report/curves.rst", category="Figures"),
        flagged=report(expand(f"{R}/figures/curves_flagged_{{task}}.{{ext}}", task=STUDY.tasks, ext=["pdf", "png"]),
                       caption="../report/curves_flagged.rst", category="Figures"),
    params:
        out=lambda w, output: os.path.dirname(output.compared[0]),
        tasks=STUDY.tasks,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/curves.log",
    localrule: True
    shell:
        "hskd curves --runs {input.runs:q} --summary {input.summary:q} --out {params.out:q} --tasks {params.tasks:q}"
        " --log {log:q}"


rule plot:
    input:
        summary=f"{R}/tables/summary.csv",
        references=f"{R}/tables/references.csv",
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
        tasks=STUDY.tasks,
        fraction=STUDY.report.fraction,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/plot.log",
    localrule: True
    shell:
        "hskd plot --summary {input.summary:q} --references {input.references:q} --out {params.out:q} --tasks {params.tasks:q}"
        " --fraction {params.fraction:q} --log {log:q}"
