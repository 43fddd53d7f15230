if STUDY.raw["synthetic_data"]:

    rule smoke_data:
        output:
            train=f"{STUDY.glue_dir}/SST-2/train.tsv",
            dev=f"{STUDY.glue_dir}/SST-2/dev.tsv",
        params:
            out=STUDY.glue_dir,
        log:
            "logs/smoke_data.log",
        shell:
            "{HSKD} make-smoke-data --out-dir {params.out} > {log} 2>&1"


def glue_inputs(wildcards):
    if STUDY.glue_dir is None:
        return []
    from hskd.glue import get_task

    folder = f"{STUDY.glue_dir}/{wildcards.task}"
    return [f"{folder}/train.tsv", f"{folder}/{get_task(wildcards.task).dev_file}"]


rule prepare_data:
    input:
        glue_inputs,
    output:
        **{split: paths.DATA.format(results=R, task="{task}", split=split) for split in ("train", "heldout", "dev")},
    params:
        glue_dir=STUDY.glue_dir or "",
        tokenizer=STUDY.teacher.model,
        max_seq_length=lambda w: STUDY.data.seq_len(w.task),
        train_subset=STUDY.data.train_subset or 0,
        heldout_size=STUDY.data.heldout_size,
        seed=STUDY.data.subset_seed,
        out_dir=lambda w, output: os.path.dirname(output.train),
    log:
        "logs/{task}/prepare_data.log",
    shell:
        "{HSKD} prepare-data --task {wildcards.task} --glue-dir '{params.glue_dir}' --tokenizer '{params.tokenizer}'"
        " --max-seq-length {params.max_seq_length} --train-subset {params.train_subset}"
        " --heldout-size {params.heldout_size} --seed {params.seed} --out-dir {params.out_dir} > {log} 2>&1"
