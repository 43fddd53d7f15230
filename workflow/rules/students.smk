rule init_student:
    input:
        unpack(lambda w: teacher_files(w.task)),
        train=paths.DATA.format(results=R, task="{task}", split="train"),
        hub=hub_student_inputs,  # hub.offline: a pretrained student model's download
    output:
        directory(paths.STUDENT_INIT.format(results=R, task="{task}", student="{student}")),
    params:
        args=lambda w, input, output: args_file(
            "--task", w.task, "--settings", as_json(dataclasses.asdict(STUDY.students[w.student])),
            "--teacher-dir", teacher_dir(w), "--train", input.train, "--out-dir", output[0],
            "--seed", STUDY.for_task(w.task).teacher.seed,
        ),
    threads: STUDY.threads
    resources:
        **cluster_resources("init_student"),
        teacher_margin=TEACHER_MARGIN,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/{{task}}/init_student_{{student}}.log",
    benchmark:
        f"{R}/benchmarks/{{task}}/init_student_{{student}}.tsv"
    shell:
        "hskd init-student @{params.args:q} --threads {threads} --teacher-margin {resources.teacher_margin}"
        " --log {log:q}"
