rule distill:
    input:
        unpack(run_inputs),
    output:
        paths.RUN_METRICS.format(results=R, task="{task}", student="{student}", depth="{depth}",
                                 length="{length}", width="{width}", lr="{lr}", seed="{seed}"),
    params:
        settings=run_settings,
        teacher_dir=teacher_dir,
        store=lambda w: optional("--store", run_store(w)),
    # not in the settings param: a new thread count must not rerun finished runs (as checkpoint_minutes)
    threads: STUDY.threads
    resources:
        **cluster_resources("distill"),
        gpu=1 if STUDY.gpu else 0,
        # a resource, not a param: how often a job saves its state does not change its result, so a new
        # value must not rerun finished jobs (Snakemake reruns a job whose params change)
        checkpoint_minutes=str(STUDY.checkpoint_minutes),
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/runs/{{student}}/depth={{depth}}/length={{length}}/width={{width}}/"
        f"lr={{lr}}/seed={{seed}}.log",
    shell:
        "hskd distill --settings {params.settings:q} --student-dir {input.student:q}"
        " --teacher-dir {params.teacher_dir:q} --train {input.train:q} --heldout {input.heldout:q}"
        " --dev {input.dev:q} --logits {input.logits:q} {params.store} --out {output:q}"
        " --threads {threads} --checkpoint-minutes {resources.checkpoint_minutes} > {log:q} 2>&1"
