rule init_student:
    input:
        unpack(lambda w: teacher_files(w.task)),
        train=paths.DATA.format(results=R, task="{task}", split="train"),
        hub=hub_student_inputs,  # hub.offline: a pretrained student model's download
    output:
        directory(paths.STUDENT_INIT.format(results=R, task="{task}", student="{student}")),
    params:
        settings=lambda w: as_json(dataclasses.asdict(STUDY.students[w.student])),
        seed=lambda w: STUDY.for_task(w.task).teacher.seed,
        teacher_dir=teacher_dir,
    threads: STUDY.threads
    resources:
        **cluster_resources("init_student"),
        teacher_margin=TEACHER_MARGIN,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/init_student_{{student}}.log",
    shell:
        "hskd init-student --task {wildcards.task} --settings {params.settings:q}"
        " --teacher-dir {params.teacher_dir:q} --train {input.train:q} --out-dir {output:q}"
        " --seed {params.seed:q} --threads {threads} --teacher-margin {resources.teacher_margin} > {log:q} 2>&1"
