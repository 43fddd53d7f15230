if STUDY.synthetic_data:

    # every task's synthetic TSVs in its classic layout, in one job (seconds of work)
    rule smoke_data:
        output:
            [f"{STUDY.glue_dir}/{task}/{name}" for task in STUDY.tasks for name in ("train.tsv", get_task(task).dev_file)],
        params:
            out=STUDY.glue_dir,
            tasks=STUDY.tasks,
        conda:
            "../../envs/hskd.yaml"
        log:
            f"{R}/logs/smoke_data.log",
        localrule: True  # seconds of work: never a cluster job
        shell:
            "hskd make-smoke-data --task {params.tasks:q} --out-dir {params.out:q} --log {log:q}"


rule prepare_data:
    input:
        glue_inputs,
        hub=hub_data_inputs,  # hub.offline: the tokenizer's and GLUE's downloads
    output:
        **{split: paths.DATA.format(results=R, task="{task}", split=split) for split in ("train", "heldout", "dev")},
    params:
        glue_dir=optional("--glue-dir", STUDY.glue_dir),
        tokenizer=STUDY.teacher.model,
        max_seq_length=lambda w: STUDY.for_task(w.task).data.max_seq_length,
        train_subset=lambda w: STUDY.for_task(w.task).data.train_subset or 0,
        heldout_size=lambda w: STUDY.for_task(w.task).data.heldout_size,
        seed=lambda w: STUDY.for_task(w.task).data.subset_seed,
        out_dir=lambda w, output: os.path.dirname(output.train),
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/prepare_data.log",
    # on the head node under a cluster executor: it reads the hub (compute nodes are often offline) and
    # only tokenizes
    localrule: True
    shell:
        "hskd prepare-data --task {wildcards.task} {params.glue_dir} --tokenizer {params.tokenizer:q}"
        " --max-seq-length {params.max_seq_length:q} --train-subset {params.train_subset:q}"
        " --heldout-size {params.heldout_size:q} --seed {params.seed:q} --out-dir {params.out_dir:q} --log {log:q}"
