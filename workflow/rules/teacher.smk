rule finetune_teacher:
    input:
        train=paths.DATA.format(results=R, task="{task}", split="train"),
        dev=paths.DATA.format(results=R, task="{task}", split="dev"),
        hub=hub_teacher_inputs,  # hub.offline: the teacher model's download
    output:
        weights=paths.TEACHER_WEIGHTS.format(results=R, task="{task}"),
        config=paths.TEACHER_CONFIG.format(results=R, task="{task}"),
        metrics=paths.TEACHER_METRICS.format(results=R, task="{task}"),
    params:
        args=lambda w, input, output: args_file(
            "--task", w.task, "--settings", as_json(dataclasses.asdict(STUDY.for_task(w.task).teacher)),
            "--data-dir", os.path.dirname(input.train), "--out-dir", os.path.dirname(output.metrics),
            "--group-by-length" if STUDY.for_task(w.task).data.group_by_length else "--no-group-by-length",
            "--precision", STUDY.precision,
        ),
    threads: STUDY.threads
    resources:
        **cluster_resources("finetune_teacher"),
        gpu=1 if STUDY.gpu else 0,
        # a resource, not a param: how often a job saves its state does not change its result, so a new
        # value must not rerun finished jobs (Snakemake reruns a job whose params change)
        checkpoint_minutes=str(STUDY.checkpoint_minutes),
        tracking=STUDY.tracking,  # as checkpoint_minutes: no result depends on it
        log_every=STUDY.log_every,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/finetune_teacher.log",
    benchmark:
        f"{R}/benchmarks/{{task}}/finetune_teacher.tsv"
    shell:
        "hskd finetune-teacher @{params.args:q} --threads {threads}"
        " --checkpoint-minutes {resources.checkpoint_minutes} --tracking {resources.tracking}"
        " --log-every {resources.log_every} --log {log:q}"
