# hskd: ablation study of BERT hidden-state knowledge distillation (Liu et al., ACL 2021).
# `snakemake --cores 2 --config glue_dir=/path/to/glue` runs the default study; see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/students.smk"
include: "workflow/rules/hsk.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/bench.smk"


rule all:
    input:
        rules.aggregate.output,  # the tables need every run of the config
        rules.plot.output,
        rules.curves.output,
        rules.study_config.output,
        rules.plan.output,
        *([rules.search_tables.output] if STUDY.grid.search == "adaptive" else []),
    default_target: True
