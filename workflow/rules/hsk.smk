# One extraction job per task: a single teacher pass writes every cached store of every student.
# (Rules are generated per task because the set of stores - a rule's outputs - depends on the task.)
for _task in STUDY.tasks:
    _targets = store_targets(_task)

    rule:
        name:
            f"extract_{_task.replace('-', '_')}"
        input:
            **teacher_files(_task),
            train=paths.DATA.format(results=R, task=_task, split="train"),
        output:
            stores=[target["path"] for target in _targets],
            logits=paths.LOGITS.format(results=R, task=_task, split="train"),
            manifest=paths.HSK_MANIFEST.format(results=R, task=_task),
        params:
            stores=as_json(_targets),
            precision=STUDY.precision,
            protocol=as_json(STUDY.protocol.as_dict()),
        threads: STUDY.threads
        resources:
            gpu=1 if STUDY.raw["gpu"] else 0,
            teacher_margin=TEACHER_MARGIN,
        conda:
            "../../envs/hskd.yaml"
        log:
            f"{R}/logs/{_task}/extract.log",
        shell:
            "hskd extract --teacher-dir \"$(dirname {input.weights:q})\" --train {input.train:q}"
            " --stores {params.stores:q} --logits {output.logits:q} --manifest {output.manifest:q}"
            " --threads {threads} --precision {params.precision:q} --protocol {params.protocol:q}"
            " --teacher-margin {resources.teacher_margin}"
            " > {log:q} 2>&1"
