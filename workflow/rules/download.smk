# Offline compute nodes (`hub.offline: true`; docs/cluster.md): local jobs fetch each hub model and
# GLUE task of the config into the hub cache (`hub.cache_dir`), one job and one manifest each, and a job that
# reads the hub waits for the manifests of what it reads (`hub_inputs` in common.smk): a new task or model
# fetches only itself and reruns nothing that exists. They run where Snakemake runs (the head node under a
# cluster executor): compute nodes may have no internet. `hskd download` forces the hub online for its own
# process (the study's jobs run with HF_HUB_OFFLINE=1).
rule download_model:
    output:
        paths.HUB_MODEL.format(results=R, model="{model}"),
    wildcard_constraints:
        model=HUB_ID_PATTERN,
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/download/models/{{model}}.log",
    localrule: True
    shell:
        "hskd download --models {wildcards.model:q} --out {output:q} --log {log:q}"


rule download_glue:
    output:
        paths.HUB_GLUE.format(results=R, task="{task}"),
    conda:
        "../../envs/hskd.yaml"
    log:
        f"{R}/logs/download/glue/{{task}}.log",
    localrule: True
    shell:
        "hskd download --glue-tasks {wildcards.task:q} --out {output:q} --log {log:q}"


# `snakemake --cores 1 download`: every model and task of the config in the cache, with or without hub.offline;
# its manifest lists them (their snapshot folders, the cache). A changed model or task list changes its inputs.
rule download:
    input:
        models=[paths.HUB_MODEL.format(results=R, model=model) for model in HUB_MODELS],
        glue=[paths.HUB_GLUE.format(results=R, task=task) for task in HUB_GLUE_TASKS],
    output:
        paths.HUB_DOWNLOAD.format(results=R),
    log:
        f"{R}/logs/download/download.log",
    localrule: True
    run:
        write_hub_manifest(input, output[0], log[0])
