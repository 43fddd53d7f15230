rule distill:
    input:
        unpack(run_inputs),
    output:
        paths.RUN_METRICS.format(results=R, task="{task}", student="{student}", depth="{depth}",
                                 length="{length}", width="{width}", lr="{lr}", seed="{seed}"),
    params:
        args=lambda w, input, output: args_file(
            "--settings", run_settings(w), "--student-dir", input.student, "--teacher-dir", teacher_dir(w),
            "--train", input.train, "--heldout", input.heldout, "--dev", input.dev, "--logits", input.logits,
            *(["--store", run_store(w)] if run_store(w) else []), "--out", output[0],
        ),
    # not in the args file (the param): a new thread count must not rerun finished runs (as checkpoint_minutes)
    threads: STUDY.threads
    resources:
        **cluster_resources("distill"),
        gpu=1 if STUDY.gpu else 0,
        # a resource, not a param: how often a job saves its state does not change its result, so a new
        # value must not rerun finished jobs (Snakemake reruns a job whose params change)
        checkpoint_minutes=str(STUDY.checkpoint_minutes),
        # resources too: where the curves go and how dense they are change no result
        tracking=STUDY.tracking,
        log_every=STUDY.log_every,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/runs/{{student}}/depth={{depth}}/length={{length}}/width={{width}}/"
        f"lr={{lr}}/seed={{seed}}.log",
    benchmark:  # the job's wall seconds and peak memory, as Snakemake measures them (scripts/job_costs.py)
        f"{R}/benchmarks/{{task}}/runs/{{student}}/depth={{depth}}/length={{length}}/width={{width}}/"
        f"lr={{lr}}/seed={{seed}}.tsv"
    shell:
        "hskd distill @{params.args:q} --threads {threads} --checkpoint-minutes {resources.checkpoint_minutes}"
        " --tracking {resources.tracking} --log-every {resources.log_every} --log {log:q}"
