# One extraction job per task: a single teacher pass writes every cached store of every student.
# The stores are one directory output (their set depends on the task, and a rule's outputs cannot be a
# function of its wildcards); which stores it holds is in its args file (the param), so a cell added to the config
# reruns extraction (Snakemake reruns a job whose params change), and Snakemake empties the folder first.
rule extract:
    input:
        unpack(lambda w: teacher_files(w.task)),
        train=paths.DATA.format(results=R, task="{task}", split="train"),
    output:
        stores=directory(paths.HSK_STORES.format(results=R, task="{task}")),
        logits=paths.LOGITS.format(results=R, task="{task}", split="train"),
        manifest=paths.HSK_MANIFEST.format(results=R, task="{task}"),
    params:
        args=lambda w, input, output: args_file(
            "--teacher-dir", teacher_dir(w), "--train", input.train, "--stores", as_json(store_targets(w.task)),
            "--logits", output.logits, "--manifest", output.manifest, "--precision", STUDY.precision,
            "--protocol", as_json(STUDY.protocol.as_dict()),
        ),
    threads: STUDY.threads
    resources:
        **cluster_resources("extract"),
        gpu=1 if STUDY.gpu else 0,
        teacher_margin=TEACHER_MARGIN,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/extract.log",
    benchmark:
        f"{R}/benchmarks/{{task}}/extract.tsv"
    shell:
        "hskd extract @{params.args:q} --threads {threads} --teacher-margin {resources.teacher_margin}"
        " --log {log:q}"
        # the folder exists even when no cell of the task is cached (a directory output must)
        " && mkdir -p {output.stores:q}"
