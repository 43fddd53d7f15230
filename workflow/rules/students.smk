rule init_student:
    input:
        unpack(lambda w: teacher_files(w.task)),
        train=paths.DATA.format(results=R, task="{task}", split="train"),
    output:
        directory(paths.STUDENT_INIT.format(results=R, task="{task}", student="{student}")),
    params:
        settings=lambda w: as_json({"name": w.student, **STUDY.raw["students"][w.student]}),
        seed=STUDY.teacher.seed,
    threads: STUDY.threads
    resources:
        teacher_margin=TEACHER_MARGIN,
    conda:
        "../../envs/hskd.yaml"
    log:
        "logs/{task}/init_student_{student}.log",
    shell:
        "hskd init-student --task {wildcards.task} --settings '{params.settings}'"
        " --teacher-dir $(dirname {input.weights}) --train {input.train} --out-dir {output}"
        " --seed {params.seed} --threads {threads} --teacher-margin {resources.teacher_margin} > {log} 2>&1"
